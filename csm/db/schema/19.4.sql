-- Schema 19.3 -> 19.4: an allocation's end costs less.
--  * fn_csm_allocation_history_dump names its columns: the row was turned into jsonb and back
--    (jsonb_populate_record), which took more than half of the function's time; the live row
--    is deleted and written to history in one statement.
--  * csm_step gets an index on allocation_id: the open steps of an ending allocation, and the
--    foreign key check of its delete, no longer read the whole table.

CREATE INDEX ix_csm_step_b ON csm_step (allocation_id);

CREATE OR REPLACE FUNCTION fn_csm_allocation_history_dump(i_allocation_id bigint, i_end_time timestamp,
                                                          i_exit_status int, i_final_state text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    ended timestamp := coalesce(i_end_time, now());
BEGIN
    PERFORM fn_csm_step_history_dump(s.step_id, s.allocation_id, jsonb_build_object(
                'end_time', ended, 'exit_status', 0, 'error_message', 'Removed by Allocation.'))
       FROM csm_step s WHERE s.allocation_id = i_allocation_id;
    DELETE FROM csm_allocation_node WHERE allocation_id = i_allocation_id;
    WITH gone AS (DELETE FROM csm_allocation WHERE allocation_id = i_allocation_id RETURNING *)
    INSERT INTO csm_allocation_history (
        allocation_id, primary_job_id, secondary_job_id, ssd_file_system_name, launch_node_name,
        isolated_cores, user_flags, system_flags, ssd_min, ssd_max, num_nodes, num_processors, num_gpus,
        projected_memory, state, type, job_type, user_name, user_id, user_group_id, user_group_name,
        user_script, begin_time, account, comment, job_name, job_submit_time, queue, requeue, time_limit,
        wc_key, smt_mode, core_blink, reservation, history_time, end_time, exit_status)
    SELECT allocation_id, primary_job_id, secondary_job_id, ssd_file_system_name, launch_node_name,
        isolated_cores, user_flags, system_flags, ssd_min, ssd_max, num_nodes, num_processors, num_gpus,
        projected_memory, coalesce(i_final_state, state), type, job_type, user_name, user_id, user_group_id,
        user_group_name, user_script, begin_time, account, comment, job_name, job_submit_time, queue, requeue,
        time_limit, wc_key, smt_mode, core_blink, reservation, now(), ended, i_exit_status
      FROM gone;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'allocation % does not exist', i_allocation_id USING ERRCODE = 'no_data_found';
    END IF;
END $$;
