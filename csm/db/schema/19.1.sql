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
