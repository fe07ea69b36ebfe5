"""csm/api/registry.py's records (Field, Command): defaults, checks, immutability."""

from twisted.trial.unittest import SynchronousTestCase

from csm.api.registry import Command, Field
from csm.errors import CSMError


class RecordTests(SynchronousTestCase):
    def test_defaults_and_given_values(self):
        field = Field("node_names", "list", flags=("-n",))
        self.assertEqual((field.name, field.kind, field.flags, field.required, field.choices, field.bits),
                         ("node_names", "list", ("-n",), False, (), None))
        command = Command(name="x", cmd_id=7, fields=(field,))
        self.assertEqual((command.cmd_id, command.timeout, command.cli_name, command.fields),
                         (7, 30.0, "csm_x", (field,)))

    def test_an_instance_holds_only_what_it_was_given(self):
        """The defaults stay on the class: building a command's definition sets a few attributes, not all."""
        self.assertEqual(vars(Field("a", "int", required=True)), {"name": "a", "kind": "int", "required": True})

    def test_a_default_given_equals_a_default_left_out(self):
        self.assertEqual(Field("a", "str", required=False), Field("a"))
        self.assertEqual(hash(Field("a", "str", required=False)), hash(Field("a")))
        self.assertNotEqual(Field("a"), Field("a", "int"))
        self.assertEqual(repr(Field("a")), repr(Field("a", "str")))

    def test_bad_construction_is_refused(self):
        self.assertRaises(TypeError, Field)  # name is required
        self.assertRaises(TypeError, Command, name="x")  # so is cmd_id
        self.assertRaises(TypeError, Field, "a", nonsense=1)
        self.assertRaises(TypeError, Field, "a", name="b")
        self.assertRaises(TypeError, Field, *range(10))

    def test_immutable(self):
        field = Field("a")
        self.assertRaises(AttributeError, setattr, field, "kind", "int")
        self.assertRaises(AttributeError, delattr, field, "name")
        self.assertEqual(field.kind, "str")

    def test_replace(self):
        field = Field("a", flags=("-a",))
        changed = field.replace(required=True)
        self.assertEqual((changed.name, changed.flags, changed.required, field.required), ("a", ("-a",), True, False))

    def test_a_command_that_validated_is_the_same_record(self):
        """``validate`` keeps its fields by name from the first call (not an attribute): equality,
        hash, repr and replace are those of a command that never validated; the checks are kept."""
        def command():
            return Command(name="x", cmd_id=7, fields=(Field("a", required=True), Field("b", "int")))
        used = command()
        self.assertEqual(used.validate({"a": "text", "b": "3"}), {"a": "text", "b": 3})
        self.assertEqual(used.validate({"a": "t\u00e9xt"}), {"a": "t\u00e9xt"})
        self.assertEqual((used, hash(used), repr(used)), (command(), hash(command()), repr(command())))
        self.assertEqual(used.replace(cmd_id=8), command().replace(cmd_id=8))
        for bad in ({"a": "c01\udcff"}, {"a": "nul\x00"}, {"b": "3"}, {"a": "x", "c": 1}):
            self.assertRaises(CSMError, used.validate, bad)
