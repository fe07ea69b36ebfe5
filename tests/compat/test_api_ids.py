"""Each API's wire id is its position in CAST's csmi_cmds_def.h."""

from twisted.trial.unittest import SynchronousTestCase

from csm.api.commands import API_IDS, REGISTRY

#: A sample read from CAST 1.8.5's enum: the ids that had drifted, and both ends.
CAST_IDS = {
    "bb_cmd": 1, "ras_event_create": 29, "ras_subscribe": 30, "ras_unsubscribe": 31, "ras_sub_event": 32,
    "ras_event_query": 33, "ras_msg_type_create": 34, "ras_msg_type_update": 35, "ras_msg_type_get": 36,
    "ras_msg_type_delete": 37, "ras_msg_type_query": 38, "node_attributes_update": 42,
    "node_attributes_query": 43, "node_attributes_query_details": 44, "node_attributes_query_history": 45,
    "node_query_state_history": 46, "node_delete": 47, "allocation_create": 18, "ssd_wear_update": 64,
}


class ApiIdTests(SynchronousTestCase):
    def test_cast_positions(self):
        self.assertEqual({name: API_IDS[name] for name in CAST_IDS}, CAST_IDS)

    def test_ids_fill_the_regular_range(self):
        self.assertEqual(sorted(API_IDS.values()), list(range(1, 65)))

    def test_registry_uses_them(self):
        for command in REGISTRY:
            if command.name in API_IDS:
                self.assertEqual(command.cmd_id, API_IDS[command.name], command.name)
