-- Schema 19.4 -> 19.5: node state changes are announced.
--  * Every real change of a node's state is sent, at commit, as a notification on the
--    channel csm_node_state (JSON: node_name, state, alteration, ras_msg_id), so the master
--    can tell a workload manager (csm/ras/slurm.py: Slurm drain and resume) whatever made
--    the change: a RAS event, an API call, soft failure recovery or an administrator's SQL.
--    A rolled-back change sends nothing.

CREATE OR REPLACE FUNCTION fn_csm_node_state() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    cause text := nullif(current_setting('csm.alteration', true), '');
    msg_id text := nullif(current_setting('csm.ras_msg_id', true), '');
BEGIN
    IF TG_OP = 'INSERT' OR NEW.state IS DISTINCT FROM OLD.state THEN
        cause := coalesce(cause, CASE WHEN TG_OP = 'INSERT' THEN 'CSM INVENTORY' ELSE 'CSM API' END);
        INSERT INTO csm_node_state_history (history_time, node_name, state, operation, alteration,
                                            ras_rec_id, ras_msg_id)
        VALUES (now(), NEW.node_name, NEW.state, left(TG_OP, 1), cause,
                nullif(current_setting('csm.ras_rec_id', true), '')::bigint, msg_id);
        PERFORM pg_notify('csm_node_state', json_build_object(
            'node_name', NEW.node_name, 'state', NEW.state, 'alteration', cause,
            'ras_msg_id', msg_id)::text);
    END IF;
    RETURN NEW;
END $$;
