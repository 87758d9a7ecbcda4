"""make_mesh: -1 filling, error messages, config round trip (8 fake CPU devices)."""

import jax
import ml_collections
import pytest

from symbiosis_jax import parallel


def test_fill_minus_one_from_device_count():
    mesh = parallel.make_mesh((("data", -1), ("fsdp", 1), ("tensor", 2)))
    assert mesh.axis_names == ("data", "fsdp", "tensor")
    assert tuple(mesh.axis_sizes) == (4, 1, 2)
    assert mesh.devices.size == 8 == jax.device_count()
    assert set(mesh.axis_types) == {jax.sharding.AxisType.Auto}


def test_explicit_axis_types():
    mesh = parallel.make_mesh((("data", 8),), axis_types="explicit")
    assert mesh.axis_types == (jax.sharding.AxisType.Explicit,)


@pytest.mark.parametrize(
    "axes, match",
    [
        ((("data", -1), ("tensor", -1)), r"at most one axis may have size -1.*\['data', 'tensor'\]"),
        ((("data", -1), ("tensor", 3)), r"multiply to 3, which does not divide the device count 8"),
        ((("data", 2), ("tensor", 2)), r"multiply to 4 but there are 8 devices"),
        ((("data", 16),), r"multiply to 16 but there are 8 devices"),
        ((("data", 0), ("tensor", -1)), r"must be positive or -1"),
        ((("data", -1), ("data", 1)), r"unique"),
        ("data", r"sequence of \(name, size\) pairs"),
        ((("data", "2"),), r"must be an int"),
    ],
)
def test_mesh_errors_name_axes_and_device_count(axes, match):
    with pytest.raises(ValueError, match=match):
        parallel.make_mesh(axes)


def test_bad_axis_types():
    with pytest.raises(ValueError, match=r"axis_types='manual' is not one of \('auto', 'explicit'\)"):
        parallel.make_mesh((("data", -1),), axis_types="manual")


def test_mesh_from_config_fields_in_standard_order():
    cfg = ml_collections.ConfigDict(dict(tensor=2, data=-1, fsdp=2, axis_types="auto"))
    assert parallel.mesh_axes_from_config(cfg) == (("data", -1), ("fsdp", 2), ("tensor", 2))
    mesh = parallel.make_mesh(cfg)
    assert dict(zip(mesh.axis_names, mesh.axis_sizes)) == {"data": 2, "fsdp": 2, "tensor": 2}


def test_mesh_config_axis_types_field_is_used():
    cfg = ml_collections.ConfigDict(dict(data=-1, fsdp=1, tensor=1, axis_types="explicit"))
    assert parallel.make_mesh(cfg).axis_types[0] == jax.sharding.AxisType.Explicit


def test_common_mesh_config_with_command_line_style_override():
    from configs import common

    cfg = common.mesh_config()
    cfg.data = 2  # what --config.mesh.data=2 does
    with pytest.raises(ValueError, match=r"multiply to 2 but there are 8 devices"):
        parallel.make_mesh(cfg)
    cfg.fsdp = -1
    mesh = parallel.make_mesh(cfg)
    assert tuple(mesh.axis_sizes) == (2, 4, 1)


def test_resolve_axes_is_pure():
    assert parallel.resolve_axes((("data", -1), ("tensor", 4)), 32) == (("data", 8), ("tensor", 4))
