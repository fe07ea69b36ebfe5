-- Schema 19.1 -> 19.2: diagnostics, switches and InfiniBand cables (CAST's 19.0 tables
-- this project had left out), with:
--  * fn_csm_diag_run_history_dump: a run and its results go to history in one call;
--  * UFM collections as one call per kind (switches, their modules, cables) that write only
--    what changed and mark what UFM no longer reports (missing_since) instead of deleting it.

-- Diagnostics ------------------------------------------------------------------------------

CREATE TABLE csm_diag_run (
    run_id        bigint PRIMARY KEY,
    allocation_id bigint,
    begin_time    timestamp NOT NULL DEFAULT now(),
    status        char(16) NOT NULL DEFAULT 'RUNNING',
    inserted_ras  boolean NOT NULL DEFAULT false,
    log_dir       text NOT NULL,
    cmd_line      text);

CREATE TABLE csm_diag_run_history (
    history_time         timestamp NOT NULL,
    run_id               bigint NOT NULL,
    allocation_id        bigint,
    begin_time           timestamp NOT NULL,
    end_time             timestamp,
    status               char(16) NOT NULL,
    inserted_ras         boolean NOT NULL,
    log_dir              text NOT NULL,
    cmd_line             text,
    archive_history_time timestamp);
CREATE INDEX ix_csm_diag_run_history_a ON csm_diag_run_history (history_time);
CREATE INDEX ix_csm_diag_run_history_b ON csm_diag_run_history (run_id);
CREATE INDEX ix_csm_diag_run_history_c ON csm_diag_run_history (allocation_id);
CREATE INDEX ix_csm_diag_run_history_e ON csm_diag_run_history (archive_history_time);

CREATE TABLE csm_diag_result (
    run_id        bigint REFERENCES csm_diag_run (run_id),
    test_name     text NOT NULL,
    node_name     text NOT NULL,
    serial_number text,
    begin_time    timestamp,
    end_time      timestamp DEFAULT now(),
    status        char(16) DEFAULT 'unknown',
    log_file      text);
CREATE INDEX ix_csm_diag_result_a ON csm_diag_result (run_id, test_name, node_name);

CREATE TABLE csm_diag_result_history (
    history_time         timestamp NOT NULL,
    run_id               bigint,
    test_name            text NOT NULL,
    node_name            text NOT NULL,
    serial_number        text,
    begin_time           timestamp,
    end_time             timestamp DEFAULT now(),
    status               char(16) DEFAULT 'unknown',
    log_file             text,
    archive_history_time timestamp);
CREATE INDEX ix_csm_diag_result_history_a ON csm_diag_result_history (history_time);
CREATE INDEX ix_csm_diag_result_history_b ON csm_diag_result_history (run_id);
CREATE INDEX ix_csm_diag_result_history_d ON csm_diag_result_history (archive_history_time);

-- A result leaves the live table only with its run: it is kept in history then.
CREATE FUNCTION fn_csm_diag_result_history_dump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO csm_diag_result_history (history_time, run_id, test_name, node_name, serial_number,
                                         begin_time, end_time, status, log_file)
    VALUES (now(), OLD.run_id, OLD.test_name, OLD.node_name, OLD.serial_number, OLD.begin_time,
            OLD.end_time, OLD.status, OLD.log_file);
    RETURN OLD;
END $$;
CREATE TRIGGER tr_csm_diag_result_history_dump BEFORE DELETE ON csm_diag_result
    FOR EACH ROW EXECUTE FUNCTION fn_csm_diag_result_history_dump();

-- End a run: it and its results move to history; false when there is no such running run.
CREATE FUNCTION fn_csm_diag_run_history_dump(i_run_id bigint, i_end_time timestamp, i_status text,
                                             i_inserted_ras boolean) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    run csm_diag_run%ROWTYPE;
BEGIN
    SELECT * INTO run FROM csm_diag_run WHERE run_id = i_run_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    DELETE FROM csm_diag_result WHERE run_id = i_run_id;
    DELETE FROM csm_diag_run WHERE run_id = i_run_id;
    INSERT INTO csm_diag_run_history (history_time, run_id, allocation_id, begin_time, end_time, status,
                                      inserted_ras, log_dir, cmd_line)
    VALUES (now(), run.run_id, run.allocation_id, run.begin_time, coalesce(i_end_time, now()), i_status,
            i_inserted_ras, run.log_dir, run.cmd_line);
    RETURN true;
END $$;

-- Switches and their modules ---------------------------------------------------------------

CREATE TABLE csm_switch (
    switch_name             text PRIMARY KEY,
    serial_number           text,
    discovery_time          timestamp,
    collection_time         timestamp,
    comment                 text,
    description             text,
    fw_version              text,
    gu_id                   text CONSTRAINT uk_csm_switch_gu_id_a UNIQUE,
    has_ufm_agent           boolean,
    hw_version              text,
    ip                      text,
    model                   text,
    num_modules             int,
    physical_frame_location text,
    physical_u_location     text,
    ps_id                   text,
    role                    text,
    server_operation_mode   text,
    sm_mode                 text,
    state                   text,
    sw_version              text,
    system_guid             text,
    system_name             text,
    total_alarms            int,
    type                    text,
    vendor                  text,
    missing_since           timestamp);  -- beyond CAST: UFM stopped reporting it then

CREATE TABLE csm_switch_inventory (
    name             text PRIMARY KEY,
    host_system_guid text NOT NULL REFERENCES csm_switch (gu_id),
    discovery_time   timestamp,
    collection_time  timestamp,
    comment          text,
    description      text,
    device_name      text,
    device_type      text,
    hw_version       text,
    max_ib_ports     int,
    module_index     int,
    number_of_chips  int,
    path             text,
    serial_number    text,
    severity         text,
    status           text,
    type             text,
    fw_version       text,
    missing_since    timestamp);
CREATE INDEX ix_csm_switch_inventory_a ON csm_switch_inventory (host_system_guid);

CREATE TABLE csm_ib_cable (
    serial_number   text PRIMARY KEY,
    discovery_time  timestamp,
    collection_time timestamp,
    comment         text,
    guid_s1         text,
    guid_s2         text,
    identifier      text,
    length          text,
    name            text,
    part_number     text,
    port_s1         text,
    port_s2         text,
    revision        text,
    severity        text,
    type            text,
    width           text,
    missing_since   timestamp);
CREATE INDEX ix_csm_ib_cable_a ON csm_ib_cable (guid_s1);
CREATE INDEX ix_csm_ib_cable_b ON csm_ib_cable (guid_s2);

-- A live table's history table: its columns with history_time, operation and archive_history_time,
-- and the indexes of every history table (index _b: ``keys``, then history_time). 19.3 uses it too.
CREATE FUNCTION fn_csm_make_history_table(live text, keys text[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    history text := live || '_history';
BEGIN
    EXECUTE format('CREATE TABLE %I (LIKE %I)', history, live);
    EXECUTE format('ALTER TABLE %I ADD COLUMN history_time timestamp NOT NULL,
                    ADD COLUMN operation char(1) NOT NULL, ADD COLUMN archive_history_time timestamp', history);
    EXECUTE format('CREATE INDEX %I ON %I (history_time)', 'ix_' || history || '_a', history);
    EXECUTE format('CREATE INDEX %I ON %I (%s, history_time)', 'ix_' || history || '_b', history,
                   (SELECT string_agg(quote_ident(k), ', ') FROM unnest(keys) k));
    EXECUTE format('CREATE INDEX %I ON %I (archive_history_time)', 'ix_' || history || '_d', history);
END $$;

SELECT fn_csm_make_history_table('csm_switch', '{switch_name}');
SELECT fn_csm_make_history_table('csm_switch_inventory', '{name}');
SELECT fn_csm_make_history_table('csm_ib_cable', '{serial_number}');
-- a collection that finds nothing new only moves collection_time: no history row
SELECT fn_csm_make_history_trigger(live, '{collection_time}', 'INSERT OR UPDATE OR DELETE')
  FROM unnest(ARRAY['csm_switch', 'csm_switch_inventory', 'csm_ib_cable']) live;

-- Beyond CAST: when each kind was last collected, and what that collection found. A record's own
-- collection_time is when a collection last wrote it (first seen, changed, or back); an unchanged
-- record is not rewritten (20,000 cables every few minutes would rewrite the table each time).
CREATE TABLE csm_ufm_collection (
    kind            text PRIMARY KEY,
    collection_time timestamp NOT NULL,
    counts          jsonb NOT NULL);

CREATE FUNCTION fn_csm_ufm_collection_done(i_kind text, i_counts jsonb) RETURNS void LANGUAGE sql AS $$
    INSERT INTO csm_ufm_collection (kind, collection_time, counts) VALUES (i_kind, now(), i_counts)
    ON CONFLICT (kind) DO UPDATE SET collection_time = EXCLUDED.collection_time, counts = EXCLUDED.counts;
$$;

-- UFM collections: i_rows is a JSON array of rows (column names as keys). Columns a collection
-- does not own (comment, locations) are kept. Returns counts and what was refused.

CREATE FUNCTION fn_csm_switch_inventory_collection(i_rows jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    result jsonb;
BEGIN
    WITH incoming AS (SELECT * FROM jsonb_populate_recordset(NULL::csm_switch, i_rows)),
    written AS (
        INSERT INTO csm_switch AS s (switch_name, serial_number, discovery_time, collection_time, description,
                                     fw_version, gu_id, has_ufm_agent, hw_version, ip, model, num_modules, ps_id,
                                     role, server_operation_mode, sm_mode, state, sw_version, system_guid,
                                     system_name, total_alarms, type, vendor)
        SELECT switch_name, serial_number, now(), now(), description, fw_version, gu_id, has_ufm_agent, hw_version,
               ip, model, num_modules, ps_id, role, server_operation_mode, sm_mode, state, sw_version, system_guid,
               system_name, total_alarms, type, vendor FROM incoming
        ON CONFLICT (switch_name) DO UPDATE SET
            serial_number = EXCLUDED.serial_number, collection_time = EXCLUDED.collection_time,
            description = EXCLUDED.description, fw_version = EXCLUDED.fw_version, gu_id = EXCLUDED.gu_id,
            has_ufm_agent = EXCLUDED.has_ufm_agent, hw_version = EXCLUDED.hw_version, ip = EXCLUDED.ip,
            model = EXCLUDED.model, num_modules = EXCLUDED.num_modules, ps_id = EXCLUDED.ps_id,
            role = EXCLUDED.role, server_operation_mode = EXCLUDED.server_operation_mode,
            sm_mode = EXCLUDED.sm_mode, state = EXCLUDED.state, sw_version = EXCLUDED.sw_version,
            system_guid = EXCLUDED.system_guid, system_name = EXCLUDED.system_name,
            total_alarms = EXCLUDED.total_alarms, type = EXCLUDED.type, vendor = EXCLUDED.vendor,
            missing_since = NULL
        WHERE s.missing_since IS NOT NULL
           OR (s.serial_number, s.description, s.fw_version, s.gu_id, s.has_ufm_agent, s.hw_version, s.ip, s.model,
               s.num_modules, s.ps_id, s.role, s.server_operation_mode, s.sm_mode, s.state, s.sw_version,
               s.system_guid, s.system_name, s.total_alarms, s.type, s.vendor)
              IS DISTINCT FROM
              (EXCLUDED.serial_number, EXCLUDED.description, EXCLUDED.fw_version, EXCLUDED.gu_id,
               EXCLUDED.has_ufm_agent, EXCLUDED.hw_version, EXCLUDED.ip, EXCLUDED.model, EXCLUDED.num_modules,
               EXCLUDED.ps_id, EXCLUDED.role, EXCLUDED.server_operation_mode, EXCLUDED.sm_mode, EXCLUDED.state,
               EXCLUDED.sw_version, EXCLUDED.system_guid, EXCLUDED.system_name, EXCLUDED.total_alarms,
               EXCLUDED.type, EXCLUDED.vendor)
        RETURNING (xmax = 0) AS inserted),
    gone AS (
        UPDATE csm_switch s SET missing_since = now()
         WHERE s.missing_since IS NULL AND NOT EXISTS (SELECT 1 FROM incoming i WHERE i.switch_name = s.switch_name)
        RETURNING s.switch_name)
    SELECT jsonb_build_object('received', (SELECT count(*) FROM incoming),
                              'inserted', (SELECT count(*) FROM written WHERE inserted),
                              'updated', (SELECT count(*) FROM written WHERE NOT inserted),
                              'missing', (SELECT count(*) FROM gone))
      INTO result;
    PERFORM fn_csm_ufm_collection_done('switches', result);
    RETURN result;
END $$;

CREATE FUNCTION fn_csm_switch_children_inventory_collection(i_rows jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    result jsonb;
BEGIN
    WITH incoming AS (SELECT * FROM jsonb_populate_recordset(NULL::csm_switch_inventory, i_rows)),
    hosted AS (SELECT i.* FROM incoming i WHERE EXISTS (SELECT 1 FROM csm_switch s WHERE s.gu_id = i.host_system_guid)),
    written AS (
        INSERT INTO csm_switch_inventory AS m (name, host_system_guid, discovery_time, collection_time, description,
                                               device_name, device_type, hw_version, max_ib_ports, module_index,
                                               number_of_chips, path, serial_number, severity, status, type,
                                               fw_version)
        SELECT name, host_system_guid, now(), now(), description, device_name, device_type, hw_version, max_ib_ports,
               module_index, number_of_chips, path, serial_number, severity, status, type, fw_version FROM hosted
        ON CONFLICT (name) DO UPDATE SET
            host_system_guid = EXCLUDED.host_system_guid, collection_time = EXCLUDED.collection_time,
            description = EXCLUDED.description, device_name = EXCLUDED.device_name,
            device_type = EXCLUDED.device_type, hw_version = EXCLUDED.hw_version,
            max_ib_ports = EXCLUDED.max_ib_ports, module_index = EXCLUDED.module_index,
            number_of_chips = EXCLUDED.number_of_chips, path = EXCLUDED.path,
            serial_number = EXCLUDED.serial_number, severity = EXCLUDED.severity, status = EXCLUDED.status,
            type = EXCLUDED.type, fw_version = EXCLUDED.fw_version, missing_since = NULL
        WHERE m.missing_since IS NOT NULL
           OR (m.host_system_guid, m.description, m.device_name, m.device_type, m.hw_version, m.max_ib_ports,
               m.module_index, m.number_of_chips, m.path, m.serial_number, m.severity, m.status, m.type,
               m.fw_version)
              IS DISTINCT FROM
              (EXCLUDED.host_system_guid, EXCLUDED.description, EXCLUDED.device_name, EXCLUDED.device_type,
               EXCLUDED.hw_version, EXCLUDED.max_ib_ports, EXCLUDED.module_index, EXCLUDED.number_of_chips,
               EXCLUDED.path, EXCLUDED.serial_number, EXCLUDED.severity, EXCLUDED.status, EXCLUDED.type,
               EXCLUDED.fw_version)
        RETURNING (xmax = 0) AS inserted),
    gone AS (
        UPDATE csm_switch_inventory m SET missing_since = now()
         WHERE m.missing_since IS NULL AND NOT EXISTS (SELECT 1 FROM incoming i WHERE i.name = m.name)
        RETURNING m.name)
    SELECT jsonb_build_object('received', (SELECT count(*) FROM incoming),
                              'inserted', (SELECT count(*) FROM written WHERE inserted),
                              'updated', (SELECT count(*) FROM written WHERE NOT inserted),
                              'missing', (SELECT count(*) FROM gone),
                              'unknown_host', coalesce((SELECT jsonb_agg(name ORDER BY name) FROM incoming i
                                                         WHERE NOT EXISTS (SELECT 1 FROM hosted h
                                                                            WHERE h.name = i.name)), '[]'))
      INTO result;
    PERFORM fn_csm_ufm_collection_done('modules', result);
    RETURN result;
END $$;

CREATE FUNCTION fn_csm_ib_cable_inventory_collection(i_rows jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    result jsonb;
BEGIN
    WITH incoming AS (SELECT * FROM jsonb_populate_recordset(NULL::csm_ib_cable, i_rows)),
    written AS (
        INSERT INTO csm_ib_cable AS c (serial_number, discovery_time, collection_time, guid_s1, guid_s2, identifier,
                                       length, name, part_number, port_s1, port_s2, revision, severity, type, width)
        SELECT serial_number, now(), now(), guid_s1, guid_s2, identifier, length, name, part_number, port_s1,
               port_s2, revision, severity, type, width FROM incoming
        ON CONFLICT (serial_number) DO UPDATE SET
            collection_time = EXCLUDED.collection_time, guid_s1 = EXCLUDED.guid_s1, guid_s2 = EXCLUDED.guid_s2,
            identifier = EXCLUDED.identifier, length = EXCLUDED.length, name = EXCLUDED.name,
            part_number = EXCLUDED.part_number, port_s1 = EXCLUDED.port_s1, port_s2 = EXCLUDED.port_s2,
            revision = EXCLUDED.revision, severity = EXCLUDED.severity, type = EXCLUDED.type,
            width = EXCLUDED.width, missing_since = NULL
        WHERE c.missing_since IS NOT NULL
           OR (c.guid_s1, c.guid_s2, c.identifier, c.length, c.name, c.part_number, c.port_s1, c.port_s2,
               c.revision, c.severity, c.type, c.width)
              IS DISTINCT FROM
              (EXCLUDED.guid_s1, EXCLUDED.guid_s2, EXCLUDED.identifier, EXCLUDED.length, EXCLUDED.name,
               EXCLUDED.part_number, EXCLUDED.port_s1, EXCLUDED.port_s2, EXCLUDED.revision, EXCLUDED.severity,
               EXCLUDED.type, EXCLUDED.width)
        RETURNING (xmax = 0) AS inserted),
    gone AS (
        UPDATE csm_ib_cable c SET missing_since = now()
         WHERE c.missing_since IS NULL AND NOT EXISTS (SELECT 1 FROM incoming i WHERE i.serial_number = c.serial_number)
        RETURNING c.serial_number)
    SELECT jsonb_build_object('received', (SELECT count(*) FROM incoming),
                              'inserted', (SELECT count(*) FROM written WHERE inserted),
                              'updated', (SELECT count(*) FROM written WHERE NOT inserted),
                              'missing', (SELECT count(*) FROM gone))
      INTO result;
    PERFORM fn_csm_ufm_collection_done('cables', result);
    RETURN result;
END $$;
