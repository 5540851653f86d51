"""package.xml, the msg/srv definitions, the stand-in interface packages (equal to upstream) and the
console-script list."""

from __future__ import annotations

import importlib
import importlib.util
import pathlib
import sys

import pytest

catkin_pkg_package = pytest.importorskip("catkin_pkg.package")
rosidl_parser = pytest.importorskip("rosidl_adapter.parser")

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # catkin_pkg uses old pyparsing names

REPO = pathlib.Path(__file__).resolve().parents[2]
STAND_INS = REPO / "test" / "interfaces"
# Upstream definitions of the stand-ins' packages (reference data beside the checkout, never copied in).
UPSTREAM = REPO.parent / "shared" / "interfaces" / "upstream"
STAND_IN_FILES = sorted(p for kind in ("msg", "srv", "action") for p in STAND_INS.glob(f"*/{kind}/*.{kind}"))

INTERFACE_FILES = sorted([*REPO.glob("msg/*.msg"), *REPO.glob("srv/*.srv")])


def parse_package(path: pathlib.Path):
    package = catkin_pkg_package.parse_package(str(path))
    package.validate()
    return package


def test_package_xml_validates_and_declares_an_interface_package():
    package = parse_package(REPO / "package.xml")
    assert package.name == "scenegen_ros" and package.package_format == 3
    assert package.get_build_type() == "ament_cmake"
    assert "rosidl_interface_packages" in [group.name for group in package.member_of_groups]
    buildtool = {dep.name for dep in package.buildtool_depends}
    assert {"ament_cmake", "ament_cmake_python", "rosidl_default_generators"} <= buildtool
    for dep in package.exec_depends + package.build_depends:
        dep.evaluate_condition({})
    runtime = {dep.name for dep in package.exec_depends if dep.evaluated_condition}
    assert {"rclpy", "sensor_msgs", "visualization_msgs", "diagnostic_msgs", "std_srvs", "rosidl_default_runtime",
            "shape_msgs", "geometry_msgs", "std_msgs", "builtin_interfaces"} <= runtime
    # moveit_msgs is optional: only a dependency when SCENEGEN_WITH_MOVEIT=1.
    assert "moveit_msgs" not in runtime
    moveit = next(dep for dep in package.exec_depends if dep.name == "moveit_msgs")
    moveit.evaluate_condition({"SCENEGEN_WITH_MOVEIT": "1"})
    assert moveit.evaluated_condition


def test_every_ros_package_the_launch_file_imports_is_an_exec_depend():
    import ast

    runtime = {dep.name for dep in parse_package(REPO / "package.xml").exec_depends}
    for path in sorted((REPO / "launch").glob("*.py")):
        tree = ast.parse(path.read_text())
        imported = {
            (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, (ast.Import, ast.ImportFrom)) and getattr(node, "level", 0) == 0
            for alias in node.names
        }
        ros_packages = imported - set(sys.stdlib_module_names) - {"scenegen_ros", "scenegen_core"}
        assert ros_packages <= runtime, f"{path.name} imports {sorted(ros_packages - runtime)} without an exec_depend"


def test_interface_dependencies_are_declared():
    declared = {dep.name for dep in parse_package(REPO / "package.xml").build_depends}
    used = set()
    for path in INTERFACE_FILES:
        spec = parse_interface(path)
        for fields in spec:
            used |= {field.type.pkg_name for field in fields if field.type.pkg_name}
    assert used - {"scenegen_ros"} <= declared


def parse_interface(path: pathlib.Path) -> list[list]:
    """Field lists of a .msg (one list) or .srv (request, response)."""
    if path.suffix == ".srv":
        service = rosidl_parser.parse_service_file("scenegen_ros", str(path))
        return [service.request.fields, service.response.fields]
    return [rosidl_parser.parse_message_file("scenegen_ros", str(path)).fields]


def test_interface_files_are_the_expected_ones():
    assert [p.relative_to(REPO).as_posix() for p in INTERFACE_FILES] == [
        "msg/Scene.msg", "msg/SceneObject.msg", "msg/StageTiming.msg", "srv/GenerateScene.srv",
    ]


@pytest.mark.parametrize("path", INTERFACE_FILES, ids=lambda p: p.name)
def test_every_field_is_documented(path):
    """Each field sits in a comment-led block (comment lines, then the fields they describe)."""
    assert any(parse_interface(path)), f"{path.name} has no fields"
    for block in path.read_text().split("\n\n"):
        lines = [line.strip() for line in block.splitlines() if line.strip() and line.strip() != "---"]
        for number, line in enumerate(lines):
            if not line.startswith("#"):
                assert any(previous.startswith("#") for previous in lines[:number]), f"{path.name}: '{line}' undocumented"


def test_scene_messages_have_the_agreed_fields():
    scene = {f.name: str(f.type) for f in parse_interface(REPO / "msg/Scene.msg")[0]}
    assert scene == {
        "header": "std_msgs/Header", "metric": "bool", "objects": "scenegen_ros/SceneObject[]",
        "timings": "scenegen_ros/StageTiming[]", "model_description": "string", "warnings": "string[]",
    }
    obj = {f.name: str(f.type) for f in parse_interface(REPO / "msg/SceneObject.msg")[0]}
    assert obj["id"] == "uint32" and obj["pose"] == "geometry_msgs/Pose" and obj["mesh"] == "shape_msgs/Mesh"
    assert obj["size"] == "geometry_msgs/Vector3" and obj["scale"] == "float64"
    assert obj["vertex_colors"] == "std_msgs/ColorRGBA[]" and obj["mask_boxes"] == "sensor_msgs/RegionOfInterest[]"
    assert obj["relative_pose"] == "geometry_msgs/Pose" and obj["relative_scale"] == "float64"
    request, response = parse_interface(REPO / "srv/GenerateScene.srv")
    assert [f.name for f in response] == ["success", "message", "scene"]
    assert {"timeout_s", "images"} <= {f.name for f in request}


@pytest.mark.parametrize("name", ["Scene", "SceneObject", "StageTiming"])
def test_built_messages_match_their_definitions(name):
    """Catches a stale build: the installed Python class has the fields of the .msg file."""
    msg_module = pytest.importorskip("scenegen_ros.msg", reason="interfaces not built")
    fields = [f.name for f in parse_interface(REPO / f"msg/{name}.msg")[0]]
    assert list(getattr(msg_module, name).get_fields_and_field_types()) == fields


def test_built_service_matches_its_definition():
    srv_module = pytest.importorskip("scenegen_ros.srv", reason="interfaces not built")
    request, response = parse_interface(REPO / "srv/GenerateScene.srv")
    assert list(srv_module.GenerateScene.Request.get_fields_and_field_types()) == [f.name for f in request]
    assert list(srv_module.GenerateScene.Response.get_fields_and_field_types()) == [f.name for f in response]


# ----------------------------------------------------------------------------- stand-in moveit_msgs


def interface_signature(path: pathlib.Path, package: str) -> list[tuple[str, list, list]]:
    """What decides an interface's wire format and API: per section (the message; a service's
    request and response; an action's goal, result and feedback) the fields as (type, name,
    default) and the constants as (type, name, value), in file order. Comments, blank lines and
    the spelling of default values (parsed into Python values) do not count."""
    if path.suffix == ".msg":
        sections = [("message", rosidl_parser.parse_message_file(package, str(path)))]
    elif path.suffix == ".srv":
        service = rosidl_parser.parse_service_file(package, str(path))
        sections = [("request", service.request), ("response", service.response)]
    else:
        action = rosidl_parser.parse_action_file(package, str(path))
        sections = [("goal", action.goal), ("result", action.result), ("feedback", action.feedback)]
    return [
        (
            section,
            [(str(f.type), f.name, f.default_value) for f in spec.fields],
            [(c.type, c.name, c.value) for c in spec.constants],
        )
        for section, spec in sections
    ]


def test_stand_in_signature_sees_types_names_defaults_and_constants(tmp_path):
    """The comparison below is only as good as this signature: each kind of difference changes it,
    formatting and comments do not."""
    reference = "# comment\nstring key\n\nint32 count 3\nuint8 ADD=0\n"
    variants = {
        "type": "string key\nint64 count 3\nuint8 ADD=0\n",
        "name": "string type\nint32 count 3\nuint8 ADD=0\n",
        "order": "int32 count 3\nstring key\nuint8 ADD=0\n",
        "default": "string key\nint32 count 4\nuint8 ADD=0\n",
        "constant": "string key\nint32 count 3\nuint8 ADD=1\n",
        "missing": "string key\nuint8 ADD=0\n",
    }
    (tmp_path / "Reference.msg").write_text(reference)
    (tmp_path / "Reformatted.msg").write_text("string   key  # the key\nint32 count   3\n# ...\nuint8 ADD = 0\n")
    signature = interface_signature(tmp_path / "Reference.msg", "pkg")
    assert interface_signature(tmp_path / "Reformatted.msg", "pkg") == signature
    for kind, text in variants.items():
        (tmp_path / f"{kind.title()}.msg").write_text(text)
        assert interface_signature(tmp_path / f"{kind.title()}.msg", "pkg") != signature, kind


@pytest.mark.parametrize("path", STAND_IN_FILES, ids=lambda p: p.relative_to(STAND_INS).as_posix())
def test_stand_in_is_identical_to_upstream(path):
    """Every stand-in interface equals the upstream file of the same name (../shared reference)."""
    if not UPSTREAM.is_dir():
        pytest.skip(f"upstream interface definitions not available ({UPSTREAM})")
    package = path.relative_to(STAND_INS).parts[0]
    upstream = UPSTREAM / path.relative_to(STAND_INS)
    assert upstream.is_file(), f"{path.relative_to(REPO)} has no upstream counterpart {upstream}"
    assert interface_signature(path, package) == interface_signature(upstream, package)


def test_stand_ins_are_found():
    names = {p.relative_to(STAND_INS).as_posix() for p in STAND_IN_FILES}
    assert {"moveit_msgs/msg/CollisionObject.msg", "object_recognition_msgs/msg/ObjectType.msg"} <= names


def test_stand_in_packages_validate_and_stay_out_of_real_workspaces():
    for name in ("moveit_msgs", "object_recognition_msgs"):
        assert parse_package(STAND_INS / name / "package.xml").name == name
    # colcon/rosdep/catkin_pkg skip the folder, so the stand-ins never shadow the real packages.
    assert (STAND_INS / "COLCON_IGNORE").is_file()


@pytest.mark.parametrize(
    "path", [p for p in STAND_IN_FILES if p.suffix == ".msg"], ids=lambda p: p.relative_to(STAND_INS).as_posix()
)
def test_built_stand_in_matches_its_definition(path):
    """Catches a stale build (or a real install that differs): the importable class has the fields
    and constants of the definition, which the test above proves equal to upstream."""
    package = path.relative_to(STAND_INS).parts[0]
    try:
        message = getattr(importlib.import_module(f"{package}.msg"), path.stem)
    except ImportError:
        pytest.skip(f"{package} not importable")
    [(_, fields, constants)] = interface_signature(path, package)
    assert list(message.get_fields_and_field_types()) == [name for _, name, _ in fields]
    for kind, name, value in constants:
        built = getattr(message, name)
        assert (built == bytes([value])) if kind == "byte" else (built == value), name


# ----------------------------------------------------------------------------- console scripts


def load_console_scripts_module():
    spec = importlib.util.spec_from_file_location("console_scripts", REPO / "cmake" / "console_scripts.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cmake_reads_the_setup_py_console_scripts():
    if not (REPO / "setup.py").is_file():
        pytest.skip("setup.py not written yet")
    scripts = load_console_scripts_module().console_scripts(REPO / "setup.py")
    assert {
        ("scenegen_node", "scenegen_ros.node", "main"),
        ("scenegen_demo", "scenegen_ros.demo", "main"),
        ("synthetic_camera", "scenegen_ros.synthetic_camera", "main"),
    } <= set(scripts)


def test_console_scripts_parser_rejects_bad_setup_py(tmp_path):
    module = load_console_scripts_module()
    missing = tmp_path / "setup.py"
    missing.write_text("from setuptools import setup\nsetup(name='x')\n")
    with pytest.raises(ValueError, match="no literal entry_points"):
        module.console_scripts(missing)
    missing.write_text("setup(entry_points={'console_scripts': ['broken-entry']})\n")
    with pytest.raises(ValueError, match="'broken-entry' is not 'name = module:function'"):
        module.console_scripts(missing)
