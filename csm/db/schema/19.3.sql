-- Schema 19.2 -> 19.3: the burst buffer tables (CAST's 19.0 volume groups and logical volumes,
-- which this project had left out), with:
--  * fn_csm_lv_history_dump: a logical volume goes to history and its space back to its group;
--  * a logical volume of an allocation that ends on a node goes to history with it (the live
--    row refers to the allocation's node row, ON DELETE CASCADE, and a removed volume always
--    goes to history), as CAST's fn_csm_allocation_dead_records_on_lv;
--  * csm_lv_update_history: one row per creation and per change of state or size.

CREATE TABLE csm_vg (
    vg_name        text NOT NULL,
    node_name      text NOT NULL REFERENCES csm_node (node_name),
    total_size     bigint NOT NULL CHECK (total_size >= 0),
    available_size bigint NOT NULL CHECK (available_size >= 0),
    scheduler      boolean NOT NULL DEFAULT false,
    update_time    timestamp NOT NULL DEFAULT now(),
    PRIMARY KEY (vg_name, node_name),
    CHECK (available_size <= total_size));
-- one scheduler volume group per node
CREATE UNIQUE INDEX uk_csm_vg_scheduler ON csm_vg (node_name) WHERE scheduler;

CREATE TABLE csm_vg_ssd (
    vg_name        text NOT NULL,
    node_name      text NOT NULL,
    serial_number  text NOT NULL,
    ssd_allocation bigint NOT NULL CHECK (ssd_allocation >= 0),
    PRIMARY KEY (vg_name, node_name, serial_number),
    FOREIGN KEY (vg_name, node_name) REFERENCES csm_vg (vg_name, node_name) ON DELETE CASCADE,
    FOREIGN KEY (serial_number, node_name) REFERENCES csm_ssd (serial_number, node_name));
CREATE INDEX ix_csm_vg_ssd_a ON csm_vg_ssd (serial_number, node_name);

CREATE TABLE csm_lv (
    logical_volume_name text NOT NULL,
    node_name           text NOT NULL,
    allocation_id       bigint NOT NULL,
    vg_name             text NOT NULL,
    state               char(1) NOT NULL CHECK (state IN ('C', 'M', 'S', 'R')),
    current_size        bigint NOT NULL CHECK (current_size >= 0),
    max_size            bigint,
    begin_time          timestamp NOT NULL DEFAULT now(),
    updated_time        timestamp,
    file_system_mount   text,
    file_system_type    text,
    PRIMARY KEY (logical_volume_name, node_name),
    FOREIGN KEY (allocation_id, node_name) REFERENCES csm_allocation_node (allocation_id, node_name)
        ON DELETE CASCADE,
    FOREIGN KEY (vg_name, node_name) REFERENCES csm_vg (vg_name, node_name));
CREATE INDEX ix_csm_lv_a ON csm_lv (allocation_id);

SELECT fn_csm_make_history_table('csm_vg', '{vg_name,node_name}');
SELECT fn_csm_make_history_table('csm_vg_ssd', '{vg_name,node_name}');
SELECT fn_csm_make_history_trigger('csm_vg', '{update_time}', 'INSERT OR UPDATE OR DELETE');
SELECT fn_csm_make_history_trigger('csm_vg_ssd', '{}', 'INSERT OR UPDATE OR DELETE');
CREATE TRIGGER tr_csm_vg_update_time BEFORE INSERT OR UPDATE ON csm_vg
    FOR EACH ROW EXECUTE FUNCTION fn_csm_stamp_update_time();

CREATE TABLE csm_lv_history (
    history_time         timestamp NOT NULL,
    logical_volume_name  text NOT NULL,
    node_name            text NOT NULL,
    allocation_id        bigint NOT NULL,
    vg_name              text,
    state                char(1) NOT NULL,
    current_size         bigint,
    max_size             bigint,
    begin_time           timestamp,
    updated_time         timestamp,
    end_time             timestamp,
    file_system_mount    text,
    file_system_type     text,
    num_bytes_read       bigint,
    num_bytes_written    bigint,
    operation            char(1),
    archive_history_time timestamp,
    num_reads            bigint,
    num_writes           bigint);
CREATE INDEX ix_csm_lv_history_a ON csm_lv_history (history_time);
CREATE INDEX ix_csm_lv_history_b ON csm_lv_history (logical_volume_name, node_name);
CREATE INDEX ix_csm_lv_history_c ON csm_lv_history (allocation_id);
CREATE INDEX ix_csm_lv_history_d ON csm_lv_history (archive_history_time);

CREATE TABLE csm_lv_update_history (
    history_time         timestamp NOT NULL,
    logical_volume_name  text NOT NULL,
    allocation_id        bigint NOT NULL,
    state                char(1),
    current_size         bigint,
    updated_time         timestamp,
    operation            char(1),
    archive_history_time timestamp);
CREATE INDEX ix_csm_lv_update_history_a ON csm_lv_update_history (history_time);
CREATE INDEX ix_csm_lv_update_history_b ON csm_lv_update_history (logical_volume_name, allocation_id);
CREATE INDEX ix_csm_lv_update_history_c ON csm_lv_update_history (archive_history_time);

-- A creation, and each change of state or size, is a row of csm_lv_update_history.
CREATE FUNCTION fn_csm_lv_update_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.state IS NOT DISTINCT FROM OLD.state
            AND NEW.current_size IS NOT DISTINCT FROM OLD.current_size THEN
        RETURN NULL;
    END IF;
    INSERT INTO csm_lv_update_history (history_time, logical_volume_name, allocation_id, state, current_size,
                                       updated_time, operation)
    VALUES (now(), NEW.logical_volume_name, NEW.allocation_id, NEW.state, NEW.current_size, NEW.updated_time,
            left(TG_OP, 1));
    RETURN NULL;
END $$;
CREATE TRIGGER tr_csm_lv_update_history AFTER INSERT OR UPDATE ON csm_lv
    FOR EACH ROW EXECUTE FUNCTION fn_csm_lv_update_history();

-- A removed logical volume goes to history (state R, size 0) and its size back to its volume
-- group, whether deleted by the API or with its allocation's node row.
CREATE FUNCTION fn_csm_lv_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE csm_vg SET available_size = available_size + OLD.current_size
        WHERE vg_name = OLD.vg_name AND node_name = OLD.node_name;
    INSERT INTO csm_lv_update_history (history_time, logical_volume_name, allocation_id, state, current_size,
                                       updated_time, operation)
    VALUES (now(), OLD.logical_volume_name, OLD.allocation_id, 'R', 0, now(), 'D');
    INSERT INTO csm_lv_history (history_time, logical_volume_name, node_name, allocation_id, vg_name, state,
                                current_size, max_size, begin_time, updated_time, end_time, file_system_mount,
                                file_system_type, operation)
    VALUES (now(), OLD.logical_volume_name, OLD.node_name, OLD.allocation_id, OLD.vg_name, 'R', 0, OLD.max_size,
            OLD.begin_time, now(), now(), OLD.file_system_mount, OLD.file_system_type, 'D');
    RETURN NULL;
END $$;
CREATE TRIGGER tr_csm_lv_removed AFTER DELETE ON csm_lv FOR EACH ROW EXECUTE FUNCTION fn_csm_lv_removed();

-- The API's delete: the volume goes (see above) with its I/O counts. False when the allocation
-- has no such volume on that node.
CREATE FUNCTION fn_csm_lv_history_dump(i_logical_volume_name text, i_node_name text, i_allocation_id bigint,
                                       i_num_bytes_read bigint, i_num_bytes_written bigint, i_num_reads bigint,
                                       i_num_writes bigint) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM csm_lv WHERE logical_volume_name = i_logical_volume_name AND node_name = i_node_name
        AND allocation_id = i_allocation_id;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    UPDATE csm_lv_history SET num_bytes_read = i_num_bytes_read, num_bytes_written = i_num_bytes_written,
                              num_reads = i_num_reads, num_writes = i_num_writes
        WHERE logical_volume_name = i_logical_volume_name AND node_name = i_node_name
          AND allocation_id = i_allocation_id AND history_time = now();
    RETURN true;
END $$;
