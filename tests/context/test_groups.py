"""@Group: naming, titles, tags, inheritance, linking, optional parts, and errors."""

from __future__ import annotations

import dataclasses

import pytest

from runtable.context import ContextFileErrors, Group, GroupError, Pipeline, Variable

from .conftest import HEADER, load, run_code

MOTOR = HEADER + """
@Group(tags=["motors", "b"])
class Motor:
    offset: float = 0.0

    @Variable(title="Position", units="mm", tags=["a", "b"])
    def position(self, run, n: "meta#run_number"):
        return n + self.offset

    @Variable(title="Moved")
    def moved(self, run, pos: "self#position"):
        return pos > 1
"""


def test_group_is_a_keyword_only_dataclass():
    @Group
    class G:
        x: int = 1

    assert dataclasses.is_dataclass(G)
    g = G(x=2, name="g")
    assert (g.name, g.title, g.sep, g.tags, g.x) == ("g", None, "/", (), 2)
    with pytest.raises(TypeError):
        G(3)


def test_names_titles_tags(run1):
    code = MOTOR + """
sample_x = Motor(title="Sample X")
sample_y = Motor(offset=1.5, sep=" - ", tags="extra")
explicit = Motor(name="stage.z", title="Stage Z")
"""
    pipeline = load(code)
    v = pipeline.vars
    assert list(v) == ["sample_x.position", "sample_y.position", "stage.z.position",
                       "sample_x.moved", "sample_y.moved", "stage.z.moved"]
    assert v["sample_x.position"].title == "Sample X/Position"
    assert v["sample_y.position"].title == "sample_y - Position"  # title defaults to name
    assert v["stage.z.moved"].title == "Stage Z/Moved"
    assert v["sample_x.position"].tags == ("a", "b", "motors")
    assert v["sample_y.moved"].tags == ("extra",)  # instance tags replace the class's
    assert v["sample_x.position"].units == "mm"
    results = pipeline.with_context(proposal=1234, run_number=1).execute(data=run1)
    assert results.cells["sample_y.position"].data == 2.5
    assert results.cells["sample_y.moved"].data and not results.cells["sample_x.moved"].data


def test_inheritance_of_variables_and_tags():
    pipeline = load(MOTOR + """
@Group
class FastMotor(Motor):
    @Variable(title="Moved a lot")
    def moved(self, run, pos: "self#position"):
        return pos > 10

    @Variable(title="Speed")
    def speed(self, run):
        return 1

@Group(tags="own")
class OwnTags(Motor):
    pass

fast = FastMotor()
own = OwnTags()
""")
    v = pipeline.vars
    assert v["fast.moved"].title == "fast/Moved a lot"
    assert "fast.speed" in v and "fast.position" in v
    assert v["fast.speed"].tags == ("b", "motors")  # decorator tags inherited
    assert v["own.position"].tags == ("a", "b", "own")  # own decorator tags replace
    assert "own.speed" not in v


def test_undecorated_subclass_is_an_error():
    with pytest.raises(ContextFileErrors, match="is not decorated with @Group"):
        load(MOTOR + """
class Plain(Motor):
    pass

p = Plain()
""")


def test_nested_and_linked_groups(run1):
    pipeline = load(MOTOR + """
@Group
class Stage:
    x: Motor = None
    y: Motor = None
    reference: Variable = None

    @Variable(title="Distance")
    def distance(self, run, x: "self#x.position", y: "self#y.position"):
        return (x ** 2 + y ** 2) ** 0.5

    @Variable(title="Ratio")
    def ratio(self, run, d: "self#distance", r: "self#reference"):
        return d / r

    @Variable(title="All positions")
    def positions(self, run, p: "self#x.posit*"):
        return list(p)

@Variable(title="Reference")
def ref(run):
    return 2.0

shared = Motor(title="Shared")
stage = Stage(x=Motor(offset=3.0), y=shared, reference=ref)
""")
    v = pipeline.vars
    # Nested instance: <parent>.<field>; linked top-level instance keeps its own name.
    assert "stage.x.position" in v and "shared.position" in v
    assert "stage.y.position" not in v
    results = pipeline.with_context(proposal=1234, run_number=1).execute(data=run1)
    assert results.cells["stage.distance"].data == pytest.approx((16 + 1) ** 0.5)
    assert results.cells["stage.ratio"].data == pytest.approx(17 ** 0.5 / 2)
    assert results.cells["stage.positions"].data.tolist() == ["stage.x.position"]


def test_linking_a_group_bound_variable(run1):
    pipeline = load(MOTOR + """
@Group
class Detector:
    motor_pos: Variable = None

    @Variable(title="Uses motor")
    def corrected(self, run, pos: "self#motor_pos"):
        return pos * 10

mx = Motor()
det = Detector(motor_pos=mx.position)
""")
    bound = pipeline._namespace["det"].motor_pos
    assert repr(bound) == "<GroupBoundVariable 'mx.position'>"
    assert bound(None, 4) == 4 and bound.title == "Position"  # still callable
    results = pipeline.with_context(proposal=1234, run_number=1).execute(data=run1)
    assert results.cells["det.corrected"].data == 10


def test_optional_components_skip_their_dependents(run1):
    results = run_code(MOTOR + """
@Group
class Stage:
    x: Motor = None
    extra: Variable = None

    @Variable(title="X position")
    def xpos(self, run, x: "self#x.position"):
        return x

    @Variable(title="Doubled")
    def doubled(self, run, x: "self#xpos"):
        return 2 * x

    @Variable(title="With default")
    def with_default(self, run, e: "self#extra" = 42):
        return e

    @Variable(title="Glob")
    def glob(self, run, e: "self#x.pos*"):
        return e

stage = Stage()
""", run1)
    assert results.cells["stage.with_default"].data == 42
    assert str(results.errors["stage.xpos"]) == (
        "Dependencies returned no data:\n- 'stage.__missing__.x.position'")
    # cascades: doubled depends on the skipped xpos
    assert "(stage.xpos) skipped" in str(results.errors["stage.doubled"])
    assert "stage.glob" in results.errors
    assert not any("__missing__" in name for name in [*results.cells, *results.errors])


def test_dict_key_names_a_group():
    @Group
    class G:
        @Variable(title="V")
        def v(self, run):
            return 1

    pipeline = Pipeline().add({"mine": G()}, [G(name="other")])
    assert list(pipeline.vars) == ["mine.v", "other.v"]


def _group_problem(code: str) -> str:
    with pytest.raises(ContextFileErrors) as info:
        load(code)
    assert all(p.line for p in info.value.problems), info.value.problems
    return str(info.value)


@pytest.mark.parametrize("field", ["name", "title", "sep", "tags"])
def test_declaring_a_reserved_field(field):
    text = _group_problem(HEADER + f"""
@Group
class G:
    {field}: str = "x"
""")
    assert f"declares '{field}'" in text


@pytest.mark.parametrize("field", ["name", "title"])
def test_declaring_a_reserved_field_outside_a_file(field):
    with pytest.raises(GroupError, match=f"declares '{field}'"):

        @Group
        class G:
            locals()[field] = "x"


def test_instance_assigned_to_two_names():
    assert "assigned to multiple names (a, b)" in _group_problem(MOTOR + "a = b = Motor()\n")


def test_two_instances_with_one_name():
    text = _group_problem(MOTOR + "a = Motor(name='m')\nb = Motor(name='m')\n")
    assert "Group name 'm' is used by multiple group instances" in text


def test_duplicate_variable_name():
    text = _group_problem(MOTOR + """
m = Motor()

@Variable()
def dummy(run):
    return 1

Pipeline.default().add({"m.position": dummy})
""")
    assert "Duplicate variable name 'm.position'" in text


def test_group_without_name():
    with pytest.raises(ContextFileErrors, match="has no name"):
        Pipeline().add(load(MOTOR)._namespace["Motor"]())
    text = _group_problem(MOTOR + "Pipeline.default().add([Motor()])\n")
    assert "has no name" in text


def test_link_to_an_unnamed_group():
    text = _group_problem(MOTOR + """
@Group
class Detector:
    motor_pos: Variable = None

    @Variable(title="Uses motor")
    def corrected(self, run, pos: "self#motor_pos"):
        return pos

det = Detector(motor_pos=Motor().position)
""")
    assert "that has no name" in text


def test_self_target_of_wrong_type():
    text = _group_problem(MOTOR + """
@Group
class G:
    n: int = 3

    @Variable(title="V")
    def v(self, run, x: "self#n"):
        return x

g = G()
""")
    assert "refers to 'n' of type 'int'" in text and "GroupError" not in text


def test_self_target_missing():
    text = _group_problem(MOTOR + """
@Group
class G:
    @Variable(title="V")
    def v(self, run, x: "self#nothing"):
        return x

g = G()
""")
    assert "'nothing' does not exist in group 'g'" in text


def test_self_missing_intermediate_attribute():
    with pytest.raises(ContextFileErrors) as info:
        load(MOTOR + """
@Group
class G:
    m: Motor = None

    @Variable(title="V")
    def v(self, run, x: "self#mot*.position", y: "self#nope.position"):
        return x

g = G(m=Motor())
""")
    kinds = [p.kind for p in info.value.problems]
    assert kinds == ["AttributeError", "AttributeError"]
    assert "has no attribute 'mot*'" in str(info.value)


def test_all_group_problems_reported_together():
    with pytest.raises(ContextFileErrors) as info:
        load(MOTOR + """
@Group
class Bad:
    sep: str = "|"

a = b = Motor()
""")
    assert len(info.value.problems) == 2
    assert {p.kind for p in info.value.problems} == {"GroupError"}
