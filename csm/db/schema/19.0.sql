-- CSM database, schema 19.0: CAST's table layout (written for this project).
-- Live tables keep the current state; each has a _history table filled by triggers
-- (or by the dump functions of the allocation and step tables). History tables have
-- no keys, only indexes, and an archive_history_time column for the archiver.

CREATE TYPE compute_node_states AS ENUM (
    'DISCOVERED', 'IN_SERVICE', 'ADMIN_RESERVED', 'MAINTENANCE', 'SOFT_FAILURE',
    'OUT_OF_SERVICE', 'HARD_FAILURE');

CREATE TYPE ras_event_severity AS ENUM ('INFO', 'WARNING', 'FATAL');

-- The schema version -------------------------------------------------------------------

CREATE TABLE csm_db_schema_version (
    version      text PRIMARY KEY,
    create_time  timestamp NOT NULL DEFAULT now(),
    comment      text);

CREATE TABLE csm_db_schema_version_history (LIKE csm_db_schema_version);
ALTER TABLE csm_db_schema_version_history
    ALTER COLUMN version DROP NOT NULL, ALTER COLUMN create_time DROP NOT NULL,
    ADD COLUMN history_time timestamp NOT NULL,
    ADD COLUMN operation char(1) NOT NULL,
    ADD COLUMN archive_history_time timestamp;

-- History: each live table X gets fn_X_history(), written here once by a generator so that
-- the trigger itself is plain SQL (no per-row dynamic SQL): AFTER a row is inserted,
-- updated or deleted it is appended to X_history (whose columns are X's, then
-- history_time, operation, archive_history_time). An UPDATE that changes nothing (the
-- columns listed as ignored aside) writes nothing. AFTER, so that an INSERT ... ON
-- CONFLICT DO UPDATE records one update, not an insert that never happened.
CREATE FUNCTION fn_csm_make_history_trigger(live text, ignored text[], events text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    same text := CASE WHEN ignored = '{}' THEN 'NEW IS NOT DISTINCT FROM OLD'
                      ELSE format('(to_jsonb(NEW) - %L::text[]) = (to_jsonb(OLD) - %L::text[])', ignored, ignored) END;
BEGIN
    EXECUTE format($f$
        CREATE FUNCTION %1$I() RETURNS trigger LANGUAGE plpgsql AS $body$
        BEGIN
            IF TG_OP = 'UPDATE' AND %2$s THEN
                RETURN NULL;
            ELSIF TG_OP = 'DELETE' THEN
                INSERT INTO %3$I SELECT OLD.*, now(), 'D';
            ELSE
                INSERT INTO %3$I SELECT NEW.*, now(), left(TG_OP, 1);
            END IF;
            RETURN NULL;
        END $body$
    $f$, 'fn_' || live || '_history', same, live || '_history');
    EXECUTE format('CREATE TRIGGER %I AFTER %s ON %I FOR EACH ROW EXECUTE FUNCTION %I()',
                   'tr_' || live || '_history_dump', events, live, 'fn_' || live || '_history');
END $$;

-- X_history for a live table X: X's columns (those named ``nullable`` without NOT NULL), then
-- history_time, operation and archive_history_time; indexed by time (_a), by the live
-- table's ``keys`` (_b) and by archive time (_d).
CREATE FUNCTION fn_csm_history_table(live text, keys text[], nullable text[] DEFAULT '{}') RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    history text := live || '_history';
BEGIN
    EXECUTE format('CREATE TABLE %I (LIKE %I)', history, live);
    EXECUTE format('ALTER TABLE %I %s ADD COLUMN history_time timestamp NOT NULL,
                    ADD COLUMN operation char(1) NOT NULL, ADD COLUMN archive_history_time timestamp', history,
                   (SELECT string_agg(format('ALTER COLUMN %I DROP NOT NULL,', n), ' ') FROM unnest(nullable) n));
    EXECUTE format('CREATE INDEX %I ON %I (history_time)', 'ix_' || history || '_a', history);
    EXECUTE format('CREATE INDEX %I ON %I (%s)', 'ix_' || history || '_b', history,
                   (SELECT string_agg(quote_ident(k), ', ') FROM unnest(keys) k));
    EXECUTE format('CREATE INDEX %I ON %I (archive_history_time)', 'ix_' || history || '_d', history);
END $$;

-- update_time: stamped on insert and on any real change.
CREATE FUNCTION fn_csm_stamp_update_time() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR (to_jsonb(NEW) - 'update_time') IS DISTINCT FROM (to_jsonb(OLD) - 'update_time') THEN
        NEW.update_time := now();
    END IF;
    RETURN NEW;
END $$;

SELECT fn_csm_make_history_trigger('csm_db_schema_version', '{}', 'UPDATE OR DELETE');

-- Nodes -----------------------------------------------------------------------------------

CREATE TABLE csm_node (
    node_name               text PRIMARY KEY CHECK (btrim(node_name) <> ''),
    machine_model           text,
    serial_number           text,
    collection_time         timestamp,
    update_time             timestamp,
    state                   compute_node_states,
    type                    text,
    primary_agg             text,
    secondary_agg           text,
    hard_power_cap          int,
    installed_memory        bigint,
    installed_swap          bigint,
    discovered_sockets      int,
    discovered_cores        int,
    discovered_gpus         int,
    discovered_hcas         int,
    discovered_dimms        int,
    discovered_ssds         int,
    os_image_name           text,
    os_image_uuid           text,
    kernel_release          text,
    kernel_version          text,
    physical_frame_location text,
    physical_u_location     text,
    feature_1               text,
    feature_2               text,
    feature_3               text,
    feature_4               text,
    comment                 text);
CREATE INDEX ix_csm_node_a ON csm_node (node_name, state);

SELECT fn_csm_history_table('csm_node', '{node_name}');

CREATE TABLE csm_node_state_history (
    history_time         timestamp NOT NULL,
    node_name            text NOT NULL,
    state                compute_node_states,
    operation            char(1) NOT NULL,
    archive_history_time timestamp);
CREATE INDEX ix_csm_node_state_history_a ON csm_node_state_history (history_time);
CREATE INDEX ix_csm_node_state_history_b ON csm_node_state_history (node_name, state);
CREATE INDEX ix_csm_node_state_history_d ON csm_node_state_history (archive_history_time);

-- A change of any column but the state (which has its own history) and update_time.
SELECT fn_csm_make_history_trigger('csm_node', '{update_time,state}', 'INSERT OR UPDATE OR DELETE');
CREATE TRIGGER tr_csm_node_update_time
    BEFORE INSERT OR UPDATE ON csm_node
    FOR EACH ROW EXECUTE FUNCTION fn_csm_stamp_update_time();

-- Node state history: only real changes (CAST logs a row even for the same state).
CREATE FUNCTION fn_csm_node_state() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.state IS DISTINCT FROM OLD.state THEN
        INSERT INTO csm_node_state_history (history_time, node_name, state, operation)
        VALUES (now(), NEW.node_name, NEW.state, left(TG_OP, 1));
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER tr_csm_node_state
    AFTER INSERT OR UPDATE OF state ON csm_node
    FOR EACH ROW EXECUTE FUNCTION fn_csm_node_state();

-- Node children ---------------------------------------------------------------------------

CREATE TABLE csm_processor_socket (
    serial_number      text NOT NULL,
    node_name          text NOT NULL REFERENCES csm_node (node_name),
    physical_location  text,
    discovered_cores   int,
    PRIMARY KEY (serial_number, node_name));

CREATE TABLE csm_gpu (
    serial_number          text NOT NULL,
    node_name              text NOT NULL REFERENCES csm_node (node_name),
    gpu_id                 int NOT NULL,
    device_name            text NOT NULL,
    inforom_image_version  text NOT NULL,
    hbm_memory             bigint,
    pci_bus_id             text NOT NULL,
    uuid                   text NOT NULL,
    vbios                  text NOT NULL,
    PRIMARY KEY (node_name, gpu_id));

CREATE TABLE csm_hca (
    serial_number text NOT NULL,
    node_name     text NOT NULL REFERENCES csm_node (node_name),
    device_name   text,
    pci_bus_id    text NOT NULL,
    guid          text NOT NULL,
    part_number   text,
    fw_ver        text,
    hw_rev        text,
    board_id      text,
    PRIMARY KEY (node_name, serial_number));

CREATE TABLE csm_dimm (
    serial_number     text NOT NULL,
    node_name         text NOT NULL REFERENCES csm_node (node_name),
    size              int NOT NULL,
    physical_location text NOT NULL,
    PRIMARY KEY (serial_number, node_name));

CREATE TABLE csm_ssd (
    serial_number                  text NOT NULL,
    node_name                      text NOT NULL REFERENCES csm_node (node_name),
    update_time                    timestamp NOT NULL DEFAULT now(),
    device_name                    text,
    pci_bus_id                     text,
    fw_ver                         text,
    size                           bigint NOT NULL,
    wear_lifespan_used             double precision,
    wear_total_bytes_written       bigint,
    wear_total_bytes_read          bigint,
    wear_percent_spares_remaining  double precision,
    PRIMARY KEY (serial_number, node_name));

CREATE TABLE csm_ssd_wear_history (
    history_time                   timestamp NOT NULL,
    serial_number                  text,
    node_name                      text,
    wear_lifespan_used             double precision,
    wear_total_bytes_written       bigint,
    wear_total_bytes_read          bigint,
    wear_percent_spares_remaining  double precision,
    operation                      char(1) NOT NULL,
    archive_history_time           timestamp);
CREATE INDEX ix_csm_ssd_wear_history_a ON csm_ssd_wear_history (history_time);
CREATE INDEX ix_csm_ssd_wear_history_b ON csm_ssd_wear_history (serial_number, node_name);
CREATE INDEX ix_csm_ssd_wear_history_d ON csm_ssd_wear_history (archive_history_time);

SELECT fn_csm_history_table(child, '{node_name}', '{node_name}')
  FROM unnest(ARRAY['csm_processor_socket', 'csm_gpu', 'csm_hca', 'csm_dimm', 'csm_ssd']) child;

SELECT fn_csm_make_history_trigger(child, '{}', 'INSERT OR UPDATE OR DELETE')
  FROM unnest(ARRAY['csm_processor_socket', 'csm_gpu', 'csm_hca', 'csm_dimm']) child;
-- SSD identity columns go to csm_ssd_history; the wear columns to csm_ssd_wear_history.
SELECT fn_csm_make_history_trigger('csm_ssd', '{update_time,wear_lifespan_used,wear_total_bytes_written,'
    'wear_total_bytes_read,wear_percent_spares_remaining}', 'INSERT OR UPDATE OR DELETE');

CREATE FUNCTION fn_csm_ssd_wear() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.wear_lifespan_used, NEW.wear_total_bytes_written, NEW.wear_total_bytes_read,
        NEW.wear_percent_spares_remaining) IS DISTINCT FROM
       (OLD.wear_lifespan_used, OLD.wear_total_bytes_written, OLD.wear_total_bytes_read,
        OLD.wear_percent_spares_remaining) THEN
        NEW.update_time := now();
        INSERT INTO csm_ssd_wear_history (history_time, serial_number, node_name, wear_lifespan_used,
            wear_total_bytes_written, wear_total_bytes_read, wear_percent_spares_remaining, operation)
        VALUES (now(), NEW.serial_number, NEW.node_name, NEW.wear_lifespan_used,
            NEW.wear_total_bytes_written, NEW.wear_total_bytes_read, NEW.wear_percent_spares_remaining, 'U');
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER tr_csm_ssd_wear BEFORE UPDATE OF wear_lifespan_used, wear_total_bytes_written,
    wear_total_bytes_read, wear_percent_spares_remaining ON csm_ssd
    FOR EACH ROW EXECUTE FUNCTION fn_csm_ssd_wear();

-- Allocations -------------------------------------------------------------------------------

CREATE TABLE csm_allocation (
    allocation_id        bigserial PRIMARY KEY,
    primary_job_id       bigint NOT NULL,
    secondary_job_id     int,
    ssd_file_system_name text,
    launch_node_name     text NOT NULL,
    isolated_cores       int DEFAULT 0,
    user_flags           text,
    system_flags         text,
    ssd_min              bigint,
    ssd_max              bigint,
    num_nodes            int NOT NULL,
    num_processors       int NOT NULL,
    num_gpus             int NOT NULL,
    projected_memory     int NOT NULL,
    state                text NOT NULL,
    type                 text NOT NULL,
    job_type             text NOT NULL,
    user_name            text NOT NULL,
    user_id              int NOT NULL,
    user_group_id        int NOT NULL,
    user_group_name      text,
    user_script          text NOT NULL,
    begin_time           timestamp NOT NULL,
    account              text NOT NULL,
    comment              text,
    job_name             text,
    job_submit_time      timestamp NOT NULL,
    queue                text,
    requeue              text,
    time_limit           bigint NOT NULL,
    wc_key               text,
    smt_mode             smallint NOT NULL DEFAULT 0,
    core_blink           boolean NOT NULL DEFAULT false);
CREATE INDEX ix_csm_allocation_a ON csm_allocation (primary_job_id, secondary_job_id);

CREATE TABLE csm_allocation_history (LIKE csm_allocation);
ALTER TABLE csm_allocation_history
    ADD COLUMN history_time timestamp NOT NULL,
    ADD COLUMN end_time timestamp,
    ADD COLUMN exit_status int,
    ADD COLUMN archive_history_time timestamp;
CREATE INDEX ix_csm_allocation_history_a ON csm_allocation_history (history_time);
CREATE INDEX ix_csm_allocation_history_b ON csm_allocation_history (allocation_id);
CREATE INDEX ix_csm_allocation_history_c ON csm_allocation_history (primary_job_id, secondary_job_id);
CREATE INDEX ix_csm_allocation_history_d ON csm_allocation_history (archive_history_time);

CREATE TABLE csm_allocation_state_history (
    history_time         timestamp NOT NULL,
    allocation_id        bigint,
    exit_status          int,
    state                text NOT NULL,
    archive_history_time timestamp);
CREATE INDEX ix_csm_allocation_state_history_a ON csm_allocation_state_history (history_time);
CREATE INDEX ix_csm_allocation_state_history_b ON csm_allocation_state_history (allocation_id);
CREATE INDEX ix_csm_allocation_state_history_d ON csm_allocation_state_history (archive_history_time);

CREATE FUNCTION fn_csm_allocation_state_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.state IS DISTINCT FROM OLD.state THEN
        INSERT INTO csm_allocation_state_history (history_time, allocation_id, state)
        VALUES (now(), NEW.allocation_id, NEW.state);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER tr_csm_allocation_state_change
    AFTER INSERT OR UPDATE OF state ON csm_allocation
    FOR EACH ROW EXECUTE FUNCTION fn_csm_allocation_state_change();

CREATE TABLE csm_allocation_node (
    allocation_id        bigint NOT NULL REFERENCES csm_allocation (allocation_id),
    node_name            text NOT NULL REFERENCES csm_node (node_name),
    state                text NOT NULL,
    shared               boolean NOT NULL DEFAULT false,
    energy               bigint,
    gpfs_read            bigint,
    gpfs_write           bigint,
    ib_tx                bigint,
    ib_rx                bigint,
    power_cap            int,
    power_shifting_ratio int,
    power_cap_hit        bigint,
    gpu_usage            bigint,
    gpu_energy           bigint,
    cpu_usage            bigint,
    memory_usage_max     bigint,
    UNIQUE (allocation_id, node_name));
CREATE INDEX ix_csm_allocation_node_b ON csm_allocation_node (node_name);

SELECT fn_csm_history_table('csm_allocation_node', '{allocation_id,node_name}');
SELECT fn_csm_make_history_trigger('csm_allocation_node', '{}', 'DELETE');

-- Steps -------------------------------------------------------------------------------------

CREATE TABLE csm_step (
    step_id              bigint NOT NULL,
    allocation_id        bigint NOT NULL REFERENCES csm_allocation (allocation_id),
    begin_time           timestamp NOT NULL,
    status               text NOT NULL,
    executable           text NOT NULL,
    working_directory    text NOT NULL,
    argument             text NOT NULL,
    environment_variable text NOT NULL,
    num_nodes            int NOT NULL,
    num_processors       int NOT NULL,
    num_gpus             int NOT NULL,
    projected_memory     int NOT NULL,
    num_tasks            int NOT NULL,
    user_flags           text,
    PRIMARY KEY (step_id, allocation_id));

CREATE TABLE csm_step_history (LIKE csm_step);
ALTER TABLE csm_step_history
    ADD COLUMN history_time timestamp NOT NULL,
    ADD COLUMN end_time timestamp,
    ADD COLUMN exit_status int,
    ADD COLUMN error_message text,
    ADD COLUMN cpu_stats text,
    ADD COLUMN total_u_time double precision,
    ADD COLUMN total_s_time double precision,
    ADD COLUMN omp_thread_limit text,
    ADD COLUMN gpu_stats text,
    ADD COLUMN memory_stats text,
    ADD COLUMN max_memory bigint,
    ADD COLUMN io_stats text,
    ADD COLUMN archive_history_time timestamp;
CREATE INDEX ix_csm_step_history_a ON csm_step_history (history_time);
CREATE INDEX ix_csm_step_history_b ON csm_step_history (allocation_id, step_id);
CREATE INDEX ix_csm_step_history_d ON csm_step_history (archive_history_time);

CREATE TABLE csm_step_node (
    step_id       bigint NOT NULL,
    allocation_id bigint NOT NULL,
    node_name     text NOT NULL,
    UNIQUE (step_id, allocation_id, node_name),
    FOREIGN KEY (step_id, allocation_id) REFERENCES csm_step (step_id, allocation_id),
    FOREIGN KEY (allocation_id, node_name) REFERENCES csm_allocation_node (allocation_id, node_name));

SELECT fn_csm_history_table('csm_step_node', '{allocation_id,step_id}');
SELECT fn_csm_make_history_trigger('csm_step_node', '{}', 'DELETE');

-- Moving finished work to history (the live tables have no trigger for it) ------------------

-- A step ends: its nodes go to csm_step_node_history (by the delete trigger), the step to
-- csm_step_history with the end record merged in (end_time, exit_status, error_message, the
-- statistics, and the final status when given: CAST kept the begin status, quirk 3).
CREATE FUNCTION fn_csm_step_history_dump(i_step_id bigint, i_allocation_id bigint, i_end jsonb)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM csm_step_node WHERE step_id = i_step_id AND allocation_id = i_allocation_id;
    INSERT INTO csm_step_history
    SELECT (jsonb_populate_record(NULL::csm_step_history,
                to_jsonb(s) || jsonb_build_object('end_time', now())
                || (jsonb_strip_nulls(coalesce(i_end, '{}'))
                    - '{step_id,allocation_id,history_time,archive_history_time}'::text[])
                || jsonb_build_object('history_time', now()))).*
      FROM csm_step s WHERE s.step_id = i_step_id AND s.allocation_id = i_allocation_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'step % of allocation % does not exist', i_step_id, i_allocation_id
            USING ERRCODE = 'no_data_found';
    END IF;
    DELETE FROM csm_step WHERE step_id = i_step_id AND allocation_id = i_allocation_id;
END $$;

-- An allocation ends: steps still open are closed ('Removed by Allocation.'), its nodes go to
-- csm_allocation_node_history (by the delete trigger), the allocation to csm_allocation_history
-- with end_time, exit_status and the final state (complete or failed); the live rows go.
CREATE FUNCTION fn_csm_allocation_history_dump(i_allocation_id bigint, i_end_time timestamp,
                                               i_exit_status int, i_final_state text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    ended timestamp := coalesce(i_end_time, now());
BEGIN
    PERFORM fn_csm_step_history_dump(s.step_id, s.allocation_id, jsonb_build_object(
                'end_time', ended, 'exit_status', 0, 'error_message', 'Removed by Allocation.'))
       FROM csm_step s WHERE s.allocation_id = i_allocation_id;
    DELETE FROM csm_allocation_node WHERE allocation_id = i_allocation_id;
    INSERT INTO csm_allocation_history
    SELECT (jsonb_populate_record(NULL::csm_allocation_history, to_jsonb(a) || jsonb_build_object(
                'history_time', now(), 'end_time', ended, 'exit_status', i_exit_status,
                'state', coalesce(i_final_state, a.state)))).*
      FROM csm_allocation a WHERE a.allocation_id = i_allocation_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'allocation % does not exist', i_allocation_id USING ERRCODE = 'no_data_found';
    END IF;
    DELETE FROM csm_allocation WHERE allocation_id = i_allocation_id;
END $$;

-- RAS -------------------------------------------------------------------------------------

CREATE TABLE csm_ras_type (
    msg_id            text PRIMARY KEY,
    severity          ras_event_severity NOT NULL,
    message           text,
    description       text,
    control_action    text,
    threshold_count   int,
    threshold_period  int,
    enabled           boolean,
    set_state         compute_node_states,
    visible_to_users  boolean);

CREATE TABLE csm_ras_type_audit (
    msg_id_seq        bigserial PRIMARY KEY,
    operation         char(1) NOT NULL,
    change_time       timestamp NOT NULL,
    msg_id            text NOT NULL,
    severity          ras_event_severity,
    message           text,
    description       text,
    control_action    text,
    threshold_count   int,
    threshold_period  int,
    enabled           boolean,
    set_state         compute_node_states,
    visible_to_users  boolean);
CREATE INDEX ix_csm_ras_type_audit_a ON csm_ras_type_audit (msg_id);

-- Every change of a type is audited; an update that changes nothing is not.
CREATE FUNCTION fn_csm_ras_type_update() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    version csm_ras_type;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW IS NOT DISTINCT FROM OLD THEN
        RETURN NULL;
    END IF;
    version := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    INSERT INTO csm_ras_type_audit (operation, change_time, msg_id, severity, message, description,
        control_action, threshold_count, threshold_period, enabled, set_state, visible_to_users)
    VALUES (left(TG_OP, 1), now(), version.msg_id, version.severity, version.message,
        version.description, version.control_action, version.threshold_count,
        version.threshold_period, version.enabled, version.set_state, version.visible_to_users);
    RETURN NULL;
END $$;
CREATE TRIGGER tr_csm_ras_type_update AFTER INSERT OR UPDATE OR DELETE ON csm_ras_type
    FOR EACH ROW EXECUTE FUNCTION fn_csm_ras_type_update();

CREATE TABLE csm_ras_event_action (
    rec_id               bigserial PRIMARY KEY,
    msg_id               text NOT NULL,
    msg_id_seq           bigint NOT NULL REFERENCES csm_ras_type_audit (msg_id_seq),
    time_stamp           timestamp NOT NULL,
    master_time_stamp    timestamp NOT NULL,
    location_name        text NOT NULL,
    count                int,
    message              text,
    kvcsv                text,
    raw_data             text,
    archive_history_time timestamp);
CREATE INDEX ix_csm_ras_event_action_a ON csm_ras_event_action (msg_id);
CREATE INDEX ix_csm_ras_event_action_b ON csm_ras_event_action (time_stamp);
CREATE INDEX ix_csm_ras_event_action_c ON csm_ras_event_action (location_name);
CREATE INDEX ix_csm_ras_event_action_d ON csm_ras_event_action (time_stamp, msg_id);
CREATE INDEX ix_csm_ras_event_action_e ON csm_ras_event_action (time_stamp, location_name);
CREATE INDEX ix_csm_ras_event_action_f ON csm_ras_event_action (master_time_stamp);
CREATE INDEX ix_csm_ras_event_action_h ON csm_ras_event_action (archive_history_time);

CREATE VIEW csm_ras_event_action_view AS
    SELECT e.rec_id, e.msg_id, e.msg_id_seq, e.time_stamp, e.master_time_stamp, e.location_name,
           e.count, e.message, e.kvcsv, e.raw_data, e.archive_history_time,
           a.severity, a.description, a.control_action, a.threshold_count, a.threshold_period,
           a.enabled, a.set_state, a.visible_to_users
      FROM csm_ras_event_action e JOIN csm_ras_type_audit a ON a.msg_id_seq = e.msg_id_seq;

-- The history-table maker served this file only: the schema a site has is the same however it was installed.
DROP FUNCTION fn_csm_history_table(text, text[], text[]);
