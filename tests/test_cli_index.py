"""csm/api/cli_index.py: a command finds its own definition without the registry of every API."""

from twisted.trial.unittest import SynchronousTestCase

from csm.api import cli_index
from csm.api.commands import REGISTRY


class CliIndexTests(SynchronousTestCase):
    def test_every_command_line_tool_is_indexed_where_it_is_defined(self):
        """The index names each csm_* tool once, under the module that defines it, and nothing else."""
        self.assertEqual(sorted(cli_index.MODULE_OF), sorted(REGISTRY.by_cli))
        self.assertEqual(sum(len(names) for names in cli_index.MODULES.values()), len(cli_index.MODULE_OF))
        import sys
        for name, module in sorted(cli_index.MODULE_OF.items()):
            self.assertIs(cli_index.defined_in(sys.modules[module], name), REGISTRY.by_cli[name], name)

    def test_find_is_the_registrys_entry(self):
        for name, command in REGISTRY.by_cli.items():
            self.assertIs(cli_index.find(name), command, name)
        self.assertIsNone(cli_index.find("csm_no_such_command"))

    def test_a_name_missing_from_the_index_is_still_found(self):
        """A command added to the registry but not to the index: found through the registry."""
        self.patch(cli_index, "MODULE_OF", {})
        self.assertIs(cli_index.find("csm_allocation_create"), REGISTRY.by_cli["csm_allocation_create"])
