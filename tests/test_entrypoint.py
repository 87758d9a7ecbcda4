"""experiments/train.py: config file + variant + overrides reach the loop; loop lookup errors."""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import pytest

from symbiosis_jax.training import ConfigError, driver

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_CONFIG = textwrap.dedent(
    """
    import ml_collections
    from configs import common

    def get_config(arg=None):
        config = ml_collections.ConfigDict()
        config.loop = "fake_test_loop"
        config.seed = 0
        config.num_steps = 2 if arg == "smoke" else 1000
        config.model = ml_collections.ConfigDict({"width": 8 if arg == "smoke" else 512})
        config.mesh = common.mesh_config()
        config.optimizer = common.optimizer_config()
        config.logging = common.logging_config()
        return config
    """
)


@pytest.fixture(scope="module")
def train_module():
    spec = importlib.util.spec_from_file_location("_train_entry", os.path.join(REPO, "experiments", "train.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def fake_loop():
    calls = []

    def train(config, *, workdir, resume=False):
        calls.append(dict(config=config, workdir=workdir, resume=resume))
        return {"final_loss": 0.5, "steps": config.num_steps}

    driver.register_loop("fake_test_loop", train, overwrite=True)
    yield calls
    driver.LOOPS.unregister("fake_test_loop")


@pytest.fixture()
def config_file(tmp_path, monkeypatch):
    path = tmp_path / "configs" / "my_exp.py"
    path.parent.mkdir()
    path.write_text(_CONFIG)
    monkeypatch.chdir(tmp_path)
    return os.path.join("configs", "my_exp.py")


def test_variant_and_overrides_reach_the_loop(train_module, fake_loop, config_file, tmp_path):
    result = train_module.main_from_argv(
        [
            "train.py",
            f"--config={config_file}:smoke",
            "--config.mesh.data=2",
            "--config.mesh.fsdp=-1",
            "--config.optimizer.learning_rate=3e-4",
            "--config.model.width=16",
            "--resume",
        ]
    )
    assert result == {"final_loss": 0.5, "steps": 2}
    (call,) = fake_loop
    cfg = call["config"]
    assert cfg.num_steps == 2  # from the variant
    assert cfg.model.width == 16  # override beats the variant
    assert (cfg.mesh.data, cfg.mesh.fsdp, cfg.mesh.tensor) == (2, -1, 1)
    assert cfg.optimizer.learning_rate == pytest.approx(3e-4)
    assert isinstance(cfg.optimizer.learning_rate, float)
    assert call["resume"] is True
    assert call["workdir"] == os.path.join("runs", "my_exp-smoke")
    # The driver records the config it ran.
    import json

    saved = json.loads((tmp_path / "runs" / "my_exp-smoke" / "config.json").read_text())
    assert saved["model"]["width"] == 16 and saved["loop"] == "fake_test_loop"
    # The mesh built from the overridden config uses all 8 devices.
    from symbiosis_jax import parallel

    mesh = parallel.make_mesh(cfg.mesh)
    assert dict(zip(mesh.axis_names, mesh.axis_sizes)) == {"data": 2, "fsdp": 4, "tensor": 1}


def test_no_variant_and_explicit_workdir(train_module, fake_loop, config_file, tmp_path):
    train_module.main_from_argv(["train.py", f"--config={config_file}", f"--workdir={tmp_path / 'w'}"])
    (call,) = fake_loop
    assert call["config"].num_steps == 1000 and call["config"].model.width == 512
    assert call["workdir"] == str(tmp_path / "w") and call["resume"] is False


def test_unknown_override_field_is_rejected(train_module, fake_loop, config_file):
    with pytest.raises(ValueError, match=r"--config.model.depth: model has no field 'depth'; fields: \['width'\]\.$"):
        train_module.main_from_argv(["train.py", f"--config={config_file}", "--config.model.depth=3"])
    assert fake_loop == []


def test_repeated_config_flag_is_rejected(train_module, fake_loop, config_file):
    # A shell brace, --config=configs/{a,b}.py, expands to two flags; absl would keep the last.
    argv = ["train.py", f"--config={config_file}", "--config", f"{config_file}:smoke"]
    with pytest.raises(ValueError, match=r"--config given 2 times \(configs/my_exp.py, "
                                         r"configs/my_exp.py:smoke\); one run takes one config"):
        train_module.main_from_argv(argv)
    assert fake_loop == []


def test_missing_or_broken_config_file_is_a_clear_error(train_module, fake_loop, config_file, tmp_path):
    # Were: absl's "Configuration is not available because of an earlier failure to load",
    # a get_config error inside absl's flag-parsing traceback, and an AttributeError.
    with pytest.raises(ValueError, match=r"--config=configs/nope.py: the config file 'configs/nope.py' does not exist"):
        train_module.main_from_argv(["train.py", "--config=configs/nope.py"])
    (tmp_path / "configs" / "no_get_config.py").write_text("X = 1\n")
    with pytest.raises(ValueError, match=r"has no get_config\(arg=None\) function"):
        train_module.main_from_argv(["train.py", "--config=configs/no_get_config.py"])
    with pytest.raises(ValueError, match=r"config variant 'huge' is not one of"):
        train_module.main_from_argv(["train.py", f"--config={os.path.join(REPO, 'configs/grpo_arithmetic.py')}:huge"])
    # Was: FileNotFoundError for ''.
    with pytest.raises(ValueError, match=r"workdir='' is empty"):
        train_module.main_from_argv(["train.py", f"--config={config_file}", "--workdir="])
    assert not fake_loop


def test_load_config_works_from_any_directory(tmp_path):
    """The repository's configs import `configs.common`; load_config makes that importable."""
    code = (
        "import sys; from symbiosis_jax.training import driver; "
        f"c = driver.load_config({os.path.join(REPO, 'configs', 'grpo_arithmetic.py')!r} + ':smoke'); "
        "print(c.loop, c.rl.num_steps)"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["rlvr", "1"]
    # Outside a configs/ folder, the failure says what to do.
    (tmp_path / "elsewhere.py").write_text(_CONFIG)
    code = ("from symbiosis_jax.training import driver; "
            f"driver.load_config({str(tmp_path / 'elsewhere.py')!r})")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "imports the package 'configs'" in proc.stderr and "repository root" in proc.stderr


def test_unknown_loop_lists_known_loops(config_file):
    config = driver.load_config(config_file + ":smoke", loop="no_such_loop")
    with pytest.raises(ValueError, match=r"config.loop='no_such_loop' is not a known loop; known loops: \[.*'alphazero'.*'rlvr'"):
        driver.run(config, workdir="unused")
    assert not os.path.exists("unused")  # failed before touching the disk


def test_bad_config_leaves_no_workdir(tmp_path):
    # Was: config.json written into the workdir before the loop validated the config.
    config = driver.load_config(os.path.join(REPO, "configs", "grpo_arithmetic.py:smoke"), **{"rl.loss": "ppo"})
    with pytest.raises(ConfigError, match=r"config.rl.loss='ppo' is not one of"):
        driver.run(config, workdir=str(tmp_path / "w"), verbose=False)
    assert not os.path.exists(tmp_path / "w")


def test_rejected_resume_keeps_the_runs_config_json(config_file, tmp_path):
    # Was: config.json overwritten with the new config before the loop rejected the resume.
    def train(config, *, workdir, resume=False):
        if resume and config.num_steps != 2:
            raise ValueError("--resume: the checkpoint was written with a different config")
        return {"steps": config.num_steps}

    driver.register_loop("fake_test_loop", train, overwrite=True)
    try:
        workdir = str(tmp_path / "w")
        driver.run(driver.load_config(config_file + ":smoke"), workdir=workdir, verbose=False)
        changed = driver.load_config(config_file + ":smoke", num_steps=5)
        with pytest.raises(ValueError, match="different config"):
            driver.run(changed, workdir=workdir, resume=True, verbose=False)
        assert json.loads((tmp_path / "w" / "config.json").read_text())["num_steps"] == 2
        driver.run(driver.load_config(config_file + ":smoke"), workdir=workdir, resume=True, verbose=False)
        assert json.loads((tmp_path / "w" / "config.json").read_text())["num_steps"] == 2
    finally:
        driver.LOOPS.unregister("fake_test_loop")


def test_earlier_run_in_the_workdir_needs_resume_or_overwrite(train_module, fake_loop, config_file, tmp_path):
    # Was: a second run in the same workdir (`make demo` twice) trained, then died in orbax's
    # StepAlreadyExistsError at its first checkpoint.
    import jax.numpy as jnp

    from symbiosis_jax.training import Checkpointer

    workdir = tmp_path / "w"
    args = ["train.py", f"--config={config_file}:smoke", f"--workdir={workdir}"]
    train_module.main_from_argv(args)
    with Checkpointer(workdir / "checkpoints") as ckpt:  # what the loop would have saved
        ckpt.save(2, {"x": jnp.ones(2)})
    (workdir / "metrics.jsonl").write_text('{"step": 2}\n')
    (workdir / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"already holds a run's checkpoints \(steps 2\); pass --resume"):
        train_module.main_from_argv(args + ["--config.model.width=16"])
    assert len(fake_loop) == 1  # refused before the loop ran
    assert json.loads((workdir / "config.json").read_text())["model"]["width"] == 8  # kept
    with pytest.raises(ValueError, match=r"resume=True and overwrite=True exclude each other"):
        train_module.main_from_argv(args + ["--resume", "--overwrite"])
    train_module.main_from_argv(args + ["--overwrite", "--config.model.width=16"])
    assert len(fake_loop) == 2 and fake_loop[-1]["resume"] is False
    assert sorted(os.listdir(workdir)) == ["config.json", "notes.txt"]  # only the run's outputs went
    assert json.loads((workdir / "config.json").read_text())["model"]["width"] == 16


def test_a_smoke_run_into_its_default_workdir_starts_again(train_module, fake_loop, config_file, tmp_path):
    # A seconds-long smoke check is rerun often; its default workdir runs/<config>-smoke is
    # disposable. Any other run, or a smoke run into a named workdir, keeps the refusal.
    import jax.numpy as jnp

    from symbiosis_jax.training import Checkpointer

    def leave_a_checkpoint(workdir):
        with Checkpointer(workdir / "checkpoints") as ckpt:
            ckpt.save(2, {"x": jnp.ones(2)})

    smoke = tmp_path / "runs" / "my_exp-smoke"
    train_module.main_from_argv(["train.py", f"--config={config_file}:smoke"])
    leave_a_checkpoint(smoke)
    train_module.main_from_argv(["train.py", f"--config={config_file}:smoke", "--config.model.width=16"])
    assert [c["workdir"] for c in fake_loop] == [os.path.join("runs", "my_exp-smoke")] * 2
    assert sorted(os.listdir(smoke)) == ["config.json"]  # the first run's checkpoints went
    assert json.loads((smoke / "config.json").read_text())["model"]["width"] == 16
    leave_a_checkpoint(smoke)
    train_module.main_from_argv(["train.py", f"--config={config_file}:smoke", "--resume"])  # still resumable
    assert fake_loop[-1]["resume"] is True and os.listdir(smoke / "checkpoints")
    with pytest.raises(ValueError, match=r"already holds a run's checkpoints"):
        train_module.main_from_argv(["train.py", f"--config={config_file}:smoke", f"--workdir={smoke}"])
    full = tmp_path / "runs" / "my_exp"
    train_module.main_from_argv(["train.py", f"--config={config_file}"])
    leave_a_checkpoint(full)
    with pytest.raises(ValueError, match=r"already holds a run's checkpoints"):
        train_module.main_from_argv(["train.py", f"--config={config_file}"])
    assert len(fake_loop) == 4


def test_a_mesh_that_does_not_fit_fails_before_overwrite_deletes_anything(train_module, fake_loop, config_file,
                                                                          tmp_path):
    import jax.numpy as jnp

    from symbiosis_jax.training import Checkpointer

    workdir = tmp_path / "w"
    with Checkpointer(workdir / "checkpoints") as ckpt:
        ckpt.save(2, {"x": jnp.ones(2)})
    args = ["train.py", f"--config={config_file}:smoke", f"--workdir={workdir}", "--overwrite"]
    with pytest.raises(ValueError, match=r"config.mesh: .*sizes multiply to 3 but there are 8 devices"):
        train_module.main_from_argv(args + ["--config.mesh.data=3"])
    assert os.listdir(workdir / "checkpoints") and not fake_loop  # the earlier run is still there


def test_alphazero_batch_the_data_axis_does_not_divide_fails_before_the_workdir(tmp_path):
    config = driver.load_config(os.path.join(REPO, "configs", "alphazero_tictactoe.py:smoke"),
                                **{"selfplay.batch_size": 12})
    with pytest.raises(ValueError, match=r"config.selfplay.batch_size=12 must be divisible by 8"):
        driver.run(config, workdir=str(tmp_path / "w"), verbose=False)
    assert not (tmp_path / "w").exists()


def test_workdir_that_is_a_file_is_rejected(config_file, fake_loop, tmp_path):
    # Was: FileExistsError from os.makedirs.
    (tmp_path / "afile").write_text("")
    config = driver.load_config(config_file + ":smoke")
    with pytest.raises(ValueError, match=r"workdir='.*afile' is a file, not a directory"):
        driver.run(config, workdir=str(tmp_path / "afile"), verbose=False)
    assert not fake_loop


def test_load_config_overrides_and_errors(config_file, fake_loop):
    config = driver.load_config(config_file + ":smoke", **{"optimizer.learning_rate": 1e-3, "seed": 3})
    assert config.optimizer.learning_rate == 1e-3 and config.seed == 3 and config.num_steps == 2
    with pytest.raises(ValueError, match=r"override 'optimizer.lr': optimizer has no field 'lr'; fields: \[.*'learning_rate'"):
        driver.load_config(config_file, **{"optimizer.lr": 1.0})
    # A near miss names the closest field.
    with pytest.raises(ValueError, match=r"override 'optimiser.lr': config has no field 'optimiser'; .*Did you mean 'optimizer'\?$"):
        driver.load_config(config_file, **{"optimiser.lr": 1.0})
    with pytest.raises(FileNotFoundError, match=r"does not exist"):
        driver.load_config("configs/missing.py")
    out = driver.run(config, workdir="w2", verbose=False)
    assert out["steps"] == 2 and fake_loop[0]["workdir"] == "w2"


def test_default_workdir_names():
    assert driver.default_workdir("configs/grpo_arithmetic.py:smoke") == os.path.join("runs", "grpo_arithmetic-smoke")
    assert driver.default_workdir("configs/alphazero_tictactoe.py") == os.path.join("runs", "alphazero_tictactoe")
    assert driver.default_workdir(None, {"name": "x"}) == os.path.join("runs", "x")


def test_script_runs_as_a_subprocess(tmp_path):
    """The script itself (not just its functions): repo on sys.path, clear loop error."""
    cfg = tmp_path / "bad_loop.py"
    cfg.write_text(_CONFIG.replace('"fake_test_loop"', '"nope"'))
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, "experiments", "train.py"), f"--config={cfg}:smoke"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode != 0
    # A bad config is one `error:` line (a ConfigError), not a traceback.
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(
        "error: config.loop='nope' is not a known loop; known loops: [")
    assert "'rlvr'" in proc.stderr


def test_jax_distributed_flag_initializes_first(train_module, fake_loop, config_file, monkeypatch, capsys):
    import jax

    order = []
    monkeypatch.setattr(jax.distributed, "initialize", lambda *a, **k: order.append("init"))
    driver.register_loop(
        "fake_test_loop", lambda config, *, workdir, resume=False: order.append("loop") or {}, overwrite=True
    )
    train_module.main_from_argv(["train.py", f"--config={config_file}:smoke", "--jax_distributed"])
    assert order == ["init", "loop"]
    out = capsys.readouterr().out
    assert "[symbiosis_jax] loop=fake_test_loop" in out and "devices=8 (cpu)" in out
    assert "  optimizer.learning_rate = 0.0001" in out
    order.clear()
    train_module.main_from_argv(["train.py", f"--config={config_file}:smoke"])
    assert order == ["loop"]


def test_jax_distributed_outside_a_cluster_is_a_config_error(train_module, fake_loop, config_file,
                                                              monkeypatch):
    import jax

    def no_cluster(*args, **kwargs):  # what jax raises on one machine
        raise ValueError("coordinator_address should be defined.")

    monkeypatch.setattr(jax.distributed, "initialize", no_cluster)
    with pytest.raises(ConfigError, match=r"--jax_distributed: jax.distributed.initialize\(\) found no "
                                          r"cluster to join \(coordinator_address should be defined\)\. It detects"):
        train_module.main_from_argv(["train.py", f"--config={config_file}:smoke", "--jax_distributed"])
    assert fake_loop == []
