-- Schema 19.0 -> 19.1: this project's extensions.
--  * The cause of every node state change is stored with it (alteration, RAS record),
--    instead of being guessed by joining on equal timestamps.
--  * RAS events can be acknowledged (who, when).
--  * RAS thresholds are counted in the database, so a master restart loses no counts.
--  * csm_allocation(_history) gain the reservation column csm_allocation_update_history -r
--    writes (CAST's -r always failed on the missing column).

ALTER TABLE csm_node_state_history
    ADD COLUMN alteration text,
    ADD COLUMN ras_rec_id bigint,
    ADD COLUMN ras_msg_id text;

-- The writer of a state change names its cause for the transaction with
-- set_config('csm.alteration', ..., true) (and csm.ras_rec_id / csm.ras_msg_id).
CREATE OR REPLACE FUNCTION fn_csm_node_state() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    cause text := nullif(current_setting('csm.alteration', true), '');
BEGIN
    IF TG_OP = 'INSERT' OR NEW.state IS DISTINCT FROM OLD.state THEN
        INSERT INTO csm_node_state_history (history_time, node_name, state, operation, alteration,
                                            ras_rec_id, ras_msg_id)
        VALUES (now(), NEW.node_name, NEW.state, left(TG_OP, 1),
                coalesce(cause, CASE WHEN TG_OP = 'INSERT' THEN 'CSM INVENTORY' ELSE 'CSM API' END),
                nullif(current_setting('csm.ras_rec_id', true), '')::bigint,
                nullif(current_setting('csm.ras_msg_id', true), ''));
    END IF;
    RETURN NEW;
END $$;

-- A node state change with its cause, for the API handlers: nodes whose state is not
-- new_state already (and, with allowed_from, is one of those) get it; returns the names of
-- the nodes that changed. The cause is set for this call only.
CREATE FUNCTION fn_csm_node_state_update(i_node_names text[], i_state compute_node_states,
                                         i_alteration text,
                                         i_allowed_from compute_node_states[] DEFAULT NULL,
                                         i_ras_rec_id bigint DEFAULT NULL, i_ras_msg_id text DEFAULT NULL)
RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('csm.alteration', coalesce(i_alteration, ''), true),
            set_config('csm.ras_rec_id', coalesce(i_ras_rec_id::text, ''), true),
            set_config('csm.ras_msg_id', coalesce(i_ras_msg_id, ''), true);
    RETURN QUERY
        WITH changed AS (
            UPDATE csm_node n SET state = i_state
             WHERE n.node_name = ANY(i_node_names) AND n.state IS DISTINCT FROM i_state
               AND (i_allowed_from IS NULL OR n.state = ANY(i_allowed_from))
            RETURNING n.node_name)
        SELECT node_name FROM changed ORDER BY node_name;
    PERFORM set_config('csm.alteration', '', true), set_config('csm.ras_rec_id', '', true),
            set_config('csm.ras_msg_id', '', true);
END $$;

ALTER TABLE csm_ras_event_action
    ADD COLUMN acked_by text,
    ADD COLUMN ack_time timestamp;
CREATE INDEX ix_csm_ras_event_action_i ON csm_ras_event_action (ack_time);

CREATE OR REPLACE VIEW csm_ras_event_action_view AS
    SELECT e.rec_id, e.msg_id, e.msg_id_seq, e.time_stamp, e.master_time_stamp, e.location_name,
           e.count, e.message, e.kvcsv, e.raw_data, e.archive_history_time,
           a.severity, a.description, a.control_action, a.threshold_count, a.threshold_period,
           a.enabled, a.set_state, a.visible_to_users, e.acked_by, e.ack_time
      FROM csm_ras_event_action e JOIN csm_ras_type_audit a ON a.msg_id_seq = e.msg_id_seq;

CREATE TABLE csm_ras_threshold (
    msg_id        text NOT NULL,
    location_name text NOT NULL,
    window_start  timestamp NOT NULL,
    count         int NOT NULL,
    PRIMARY KEY (msg_id, location_name));

ALTER TABLE csm_allocation ADD COLUMN reservation text;
ALTER TABLE csm_allocation_history ADD COLUMN reservation text;

-- Node inventory in one call per node (the master's ingest): first sight inserts the node
-- as DISCOVERED; later reports update the inventory columns only when collection_time
-- changed and never touch the state or the administrator's columns; the children are
-- replaced (matched by their keys; the history triggers record what really changed).
CREATE FUNCTION fn_csm_node_inventory(inv jsonb) RETURNS compute_node_states LANGUAGE plpgsql AS $$
DECLARE
    node  jsonb := inv -> 'node';
    name  text := node ->> 'node_name';
    state compute_node_states;
BEGIN
    IF name IS NULL OR btrim(name) = '' THEN
        RAISE EXCEPTION 'inventory without a node name';
    END IF;
    INSERT INTO csm_node (node_name, machine_model, serial_number, collection_time, state, type,
        installed_memory, installed_swap, discovered_sockets, discovered_cores, discovered_gpus,
        discovered_hcas, discovered_dimms, discovered_ssds, os_image_name, os_image_uuid,
        kernel_release, kernel_version)
    SELECT name, r.machine_model, r.serial_number, coalesce(r.collection_time, now()), 'DISCOVERED',
        coalesce(r.type, 'compute'), r.installed_memory, r.installed_swap, r.discovered_sockets,
        r.discovered_cores, r.discovered_gpus, r.discovered_hcas, r.discovered_dimms, r.discovered_ssds,
        r.os_image_name, r.os_image_uuid, r.kernel_release, r.kernel_version
      FROM jsonb_populate_record(NULL::csm_node, node) r
    ON CONFLICT (node_name) DO UPDATE SET
        machine_model = EXCLUDED.machine_model, serial_number = EXCLUDED.serial_number,
        collection_time = EXCLUDED.collection_time, type = EXCLUDED.type,
        installed_memory = EXCLUDED.installed_memory, installed_swap = EXCLUDED.installed_swap,
        discovered_sockets = EXCLUDED.discovered_sockets, discovered_cores = EXCLUDED.discovered_cores,
        discovered_gpus = EXCLUDED.discovered_gpus, discovered_hcas = EXCLUDED.discovered_hcas,
        discovered_dimms = EXCLUDED.discovered_dimms, discovered_ssds = EXCLUDED.discovered_ssds,
        os_image_name = EXCLUDED.os_image_name, os_image_uuid = EXCLUDED.os_image_uuid,
        kernel_release = EXCLUDED.kernel_release, kernel_version = EXCLUDED.kernel_version
      WHERE csm_node.collection_time IS DISTINCT FROM EXCLUDED.collection_time;

    DELETE FROM csm_processor_socket p WHERE p.node_name = name AND p.serial_number NOT IN (
        SELECT coalesce(x ->> 'serial_number', '') FROM jsonb_array_elements(coalesce(inv -> 'processor', '[]')) x);
    INSERT INTO csm_processor_socket (serial_number, node_name, physical_location, discovered_cores)
    SELECT DISTINCT ON (coalesce(r.serial_number, '')) coalesce(r.serial_number, ''), name,
           r.physical_location, r.discovered_cores
      FROM jsonb_populate_recordset(NULL::csm_processor_socket, coalesce(inv -> 'processor', '[]')) r
    ON CONFLICT (serial_number, node_name) DO UPDATE SET
        physical_location = EXCLUDED.physical_location, discovered_cores = EXCLUDED.discovered_cores
      WHERE (csm_processor_socket.*) IS DISTINCT FROM (EXCLUDED.*);

    DELETE FROM csm_gpu g WHERE g.node_name = name AND g.gpu_id NOT IN (
        SELECT (x ->> 'gpu_id')::int FROM jsonb_array_elements(coalesce(inv -> 'gpu', '[]')) x);
    INSERT INTO csm_gpu (serial_number, node_name, gpu_id, device_name, inforom_image_version, hbm_memory,
                         pci_bus_id, uuid, vbios)
    SELECT coalesce(r.serial_number, ''), name, r.gpu_id, coalesce(r.device_name, ''),
           coalesce(r.inforom_image_version, ''), r.hbm_memory, coalesce(r.pci_bus_id, ''),
           coalesce(r.uuid, ''), coalesce(r.vbios, '')
      FROM jsonb_populate_recordset(NULL::csm_gpu, coalesce(inv -> 'gpu', '[]')) r WHERE r.gpu_id IS NOT NULL
    ON CONFLICT (node_name, gpu_id) DO UPDATE SET
        serial_number = EXCLUDED.serial_number, device_name = EXCLUDED.device_name,
        inforom_image_version = EXCLUDED.inforom_image_version, hbm_memory = EXCLUDED.hbm_memory,
        pci_bus_id = EXCLUDED.pci_bus_id, uuid = EXCLUDED.uuid, vbios = EXCLUDED.vbios
      WHERE (csm_gpu.*) IS DISTINCT FROM (EXCLUDED.*);

    DELETE FROM csm_hca h WHERE h.node_name = name AND h.serial_number NOT IN (
        SELECT coalesce(x ->> 'serial_number', '') FROM jsonb_array_elements(coalesce(inv -> 'hca', '[]')) x);
    INSERT INTO csm_hca (serial_number, node_name, device_name, pci_bus_id, guid, part_number, fw_ver,
                         hw_rev, board_id)
    SELECT DISTINCT ON (coalesce(r.serial_number, '')) coalesce(r.serial_number, ''), name, r.device_name,
           coalesce(r.pci_bus_id, ''), coalesce(r.guid, ''), r.part_number, r.fw_ver, r.hw_rev, r.board_id
      FROM jsonb_populate_recordset(NULL::csm_hca, coalesce(inv -> 'hca', '[]')) r
    ON CONFLICT (node_name, serial_number) DO UPDATE SET
        device_name = EXCLUDED.device_name, pci_bus_id = EXCLUDED.pci_bus_id, guid = EXCLUDED.guid,
        part_number = EXCLUDED.part_number, fw_ver = EXCLUDED.fw_ver, hw_rev = EXCLUDED.hw_rev,
        board_id = EXCLUDED.board_id
      WHERE (csm_hca.*) IS DISTINCT FROM (EXCLUDED.*);

    DELETE FROM csm_dimm d WHERE d.node_name = name AND d.serial_number NOT IN (
        SELECT coalesce(x ->> 'serial_number', '') FROM jsonb_array_elements(coalesce(inv -> 'dimm', '[]')) x);
    INSERT INTO csm_dimm (serial_number, node_name, size, physical_location)
    SELECT DISTINCT ON (coalesce(r.serial_number, '')) coalesce(r.serial_number, ''), name,
           coalesce(r.size, 0), coalesce(r.physical_location, '')
      FROM jsonb_populate_recordset(NULL::csm_dimm, coalesce(inv -> 'dimm', '[]')) r
    ON CONFLICT (serial_number, node_name) DO UPDATE SET
        size = EXCLUDED.size, physical_location = EXCLUDED.physical_location
      WHERE (csm_dimm.*) IS DISTINCT FROM (EXCLUDED.*);

    DELETE FROM csm_ssd s WHERE s.node_name = name AND s.serial_number NOT IN (
        SELECT coalesce(x ->> 'serial_number', '') FROM jsonb_array_elements(coalesce(inv -> 'ssd', '[]')) x);
    INSERT INTO csm_ssd (serial_number, node_name, device_name, pci_bus_id, fw_ver, size, wear_lifespan_used,
                         wear_total_bytes_written, wear_total_bytes_read, wear_percent_spares_remaining)
    SELECT DISTINCT ON (coalesce(r.serial_number, '')) coalesce(r.serial_number, ''), name, r.device_name,
           r.pci_bus_id, r.fw_ver, coalesce(r.size, 0), r.wear_lifespan_used, r.wear_total_bytes_written,
           r.wear_total_bytes_read, r.wear_percent_spares_remaining
      FROM jsonb_populate_recordset(NULL::csm_ssd, coalesce(inv -> 'ssd', '[]')) r
    ON CONFLICT (serial_number, node_name) DO UPDATE SET
        device_name = EXCLUDED.device_name, pci_bus_id = EXCLUDED.pci_bus_id, fw_ver = EXCLUDED.fw_ver,
        size = EXCLUDED.size, wear_lifespan_used = EXCLUDED.wear_lifespan_used,
        wear_total_bytes_written = EXCLUDED.wear_total_bytes_written,
        wear_total_bytes_read = EXCLUDED.wear_total_bytes_read,
        wear_percent_spares_remaining = EXCLUDED.wear_percent_spares_remaining
      WHERE (csm_ssd.device_name, csm_ssd.pci_bus_id, csm_ssd.fw_ver, csm_ssd.size, csm_ssd.wear_lifespan_used,
             csm_ssd.wear_total_bytes_written, csm_ssd.wear_total_bytes_read, csm_ssd.wear_percent_spares_remaining)
            IS DISTINCT FROM
            (EXCLUDED.device_name, EXCLUDED.pci_bus_id, EXCLUDED.fw_ver, EXCLUDED.size, EXCLUDED.wear_lifespan_used,
             EXCLUDED.wear_total_bytes_written, EXCLUDED.wear_total_bytes_read, EXCLUDED.wear_percent_spares_remaining);

    SELECT n.state INTO state FROM csm_node n WHERE n.node_name = name;
    RETURN state;
END $$;

-- The children whose primary key leads with the serial number are also found by node
-- (inventory reconciliation, node details, node delete): without these each report
-- scanned the whole table.
CREATE INDEX ix_csm_processor_socket_node ON csm_processor_socket (node_name);
CREATE INDEX ix_csm_dimm_node ON csm_dimm (node_name);
CREATE INDEX ix_csm_ssd_node ON csm_ssd (node_name);

-- A RAS event in one call (the master's pipeline, steps 1-5; see csm/ras/engine.py):
-- type lookup, suppression, $(var) substitution from the event and its kvcsv, the
-- threshold count, the insert bound to the type's audit version, and set_state with the
-- allowed-from guard and the event recorded as the cause. Never raises for a bad event:
-- the outcome says what happened ({"error": ...} for an unknown msg_id), so a batch of
-- events in one transaction is not spoiled by one of them.
CREATE FUNCTION fn_csm_ras_event_create(event jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    msg      text := event ->> 'msg_id';
    location text := coalesce(event ->> 'location_name', '');
    t        csm_ras_type;
    seq      bigint;
    node     compute_node_states;
    fields   jsonb;
    message  text;
    var      text;
    hits     int := 1;
    rec      bigint;
    stamp    timestamp;
    changed  int := 0;
    allowed  compute_node_states[];
BEGIN
    SELECT * INTO t FROM csm_ras_type WHERE msg_id = msg;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('error', format('invalid msg_id: %s is not a RAS type', msg));
    END IF;
    SELECT max(msg_id_seq) INTO seq FROM csm_ras_type_audit WHERE msg_id = msg;
    SELECT state INTO node FROM csm_node WHERE node_name = location;
    IF NOT t.enabled THEN
        RETURN jsonb_build_object('suppressed', 'the RAS type is disabled', 'severity', t.severity);
    END IF;
    IF node IN ('MAINTENANCE', 'OUT_OF_SERVICE') THEN
        RETURN jsonb_build_object('suppressed', format('%s is in %s', location, node), 'severity', t.severity);
    END IF;
    SELECT coalesce(jsonb_object_agg(btrim(split_part(item, '=', 1)), btrim(substr(item, strpos(item, '=') + 1))), '{}')
      INTO fields
      FROM unnest(string_to_array(coalesce(event ->> 'kvcsv', ''), ',')) item
     WHERE strpos(item, '=') > 1 AND btrim(split_part(item, '=', 1)) <> '';
    fields := fields || jsonb_strip_nulls(jsonb_build_object('msg_id', msg, 'location_name', event -> 'location_name',
        'time_stamp', event -> 'time_stamp', 'raw_data', event -> 'raw_data', 'kvcsv', event -> 'kvcsv'));
    IF NOT fields ? 'severity' THEN
        fields := fields || jsonb_build_object('severity', t.severity);
    END IF;
    message := coalesce(t.message, '');
    FOR var IN SELECT DISTINCT m[1] FROM regexp_matches(message, '\$\((\w+)\)', 'g') AS m LOOP
        IF var <> 'message' AND fields ->> var IS NOT NULL THEN
            message := replace(message, '$(' || var || ')', fields ->> var);
        END IF;
    END LOOP;
    IF coalesce(t.threshold_count, 0) >= 2 AND coalesce(t.threshold_period, 0) >= 1 THEN
        INSERT INTO csm_ras_threshold AS h (msg_id, location_name, window_start, count)
        VALUES (msg, location, now(), 1)
        ON CONFLICT (msg_id, location_name) DO UPDATE SET
            count = CASE WHEN h.window_start + make_interval(secs => t.threshold_period) < now() THEN 1 ELSE h.count + 1 END,
            window_start = CASE WHEN h.window_start + make_interval(secs => t.threshold_period) < now()
                                THEN now() ELSE h.window_start END
        RETURNING count INTO hits;
        IF hits < t.threshold_count THEN
            RETURN jsonb_build_object('below_threshold', true, 'count', hits, 'message', message,
                                      'severity', t.severity);
        END IF;
        DELETE FROM csm_ras_threshold WHERE msg_id = msg AND location_name = location;
    END IF;
    INSERT INTO csm_ras_event_action (msg_id, msg_id_seq, time_stamp, master_time_stamp, location_name, count,
                                      message, kvcsv, raw_data)
    VALUES (msg, seq, coalesce((event ->> 'time_stamp')::timestamp, now()), now(), location, hits, message,
            event ->> 'kvcsv', event ->> 'raw_data')
    RETURNING rec_id, time_stamp INTO rec, stamp;
    IF t.set_state IS NOT NULL AND node IS NOT NULL THEN
        allowed := CASE t.set_state WHEN 'SOFT_FAILURE' THEN ARRAY['DISCOVERED', 'IN_SERVICE']::compute_node_states[]
                                    WHEN 'HARD_FAILURE' THEN ARRAY['DISCOVERED', 'IN_SERVICE', 'SOFT_FAILURE']::compute_node_states[]
                                    ELSE '{}' END;
        SELECT count(*) INTO changed
          FROM fn_csm_node_state_update(ARRAY[location], t.set_state, 'RAS EVENT', allowed, rec, msg);
    END IF;
    RETURN jsonb_build_object('stored', true, 'rec_id', rec, 'count', hits, 'message', message,
        'severity', t.severity, 'control_action', t.control_action, 'set_state', t.set_state,
        'state_changed', changed = 1, 'node_state', node, 'time_stamp', stamp, 'master_time_stamp', now());
END $$;
