"""The AlphaZero loop's config schema: defaults and validation before anything compiles."""

from __future__ import annotations

import ml_collections

from symbiosis_jax.loops.alphazero_search import GAMES, validate_search_config
from symbiosis_jax.mcts.env import PGX_GAMES


def default_config(*, game: str) -> ml_collections.ConfigDict:
    """The loop's own config sections with defaults; ``configs/alphazero_*.py`` start here.

    The experiment file adds ``optimizer``, ``mesh`` and ``logging`` from
    ``configs/common.py`` and changes sizes. Fields:

    * ``network``: ``name`` (a key of ``networks.NETWORKS``: ``"resnet"`` | ``"mlp"``) and one
      section per network holding its keyword hyperparameters at their defaults
      (``network.resnet.num_channels``, ``network.resnet.num_blocks``,
      ``network.mlp.hidden_sizes``): ``--config.network.name`` switches networks, each keeping
      its own sizes.
    * ``search``: ``algorithm`` (``"gumbel"`` | ``"puct"``), ``num_simulations``,
      ``num_nodes`` (tree capacity, at least ``num_simulations + 1``),
      ``max_num_considered_actions`` and ``gumbel_scale`` (Gumbel; the self-play noise,
      0 in evaluation), ``pb_c_init``/``pb_c_base`` and ``dirichlet_alpha``/``dirichlet_fraction``
      (PUCT), ``reuse_tree`` (self-play keeps the played child's subtree as the next
      search's tree, see ``mcts.reuse_subtree``; give ``num_nodes`` room above
      ``num_simulations + 1`` for what is kept), ``walk_unroll`` (tree levels per loop
      iteration of the search's descent and backup: speed only, the same search; 1 is
      fastest on a CPU, more may be on a GPU).
    * ``selfplay``: ``batch_size`` (B games per iteration), ``max_num_steps`` (T moves,
      at least the longest game), ``temperature_moves``, ``random_move_prob`` (epsilon of
      uniformly random moves), ``value_target_root_weight`` (w in [0, 1]: the value target
      is ``(1 - w) z + w q``, outcome z and the search's root value q; 0 = outcome only),
      ``resign_threshold`` (-1 disables),
      ``resign_disabled_fraction``.
    * ``replay``: ``capacity`` (positions).
    * ``train``: ``num_iterations``, ``updates_per_iteration`` (K), ``batch_size``,
      ``policy_coef``, ``value_coef``, ``augment_symmetries`` (train on each sampled position
      under a symmetry of the game's board drawn uniformly: the eight rotations and
      reflections in tic-tac-toe and go, four in othello, two in connect four and hex;
      ``games.symmetry``),
      ``ema_decay`` (per-iteration decay of the moving average of the parameters that
      the evaluated agent plays with; 0 = the trained parameters themselves),
      ``time_limit_s`` (wall seconds after which the run
      stops with a last evaluation and checkpoint; 0 = none; the iteration count is
      then not reproducible, so exact-resume runs leave it at 0).
    * ``eval``: ``every`` (iterations, 0 disables), ``num_games``, ``opponents`` (from
      ``"random"``, ``"mcts"``, ``"minimax"``, ``"network"``), ``baseline_num_simulations``
      (the pure-MCTS opponent), ``num_simulations`` (the evaluated agent's search; 0 =
      ``search.num_simulations``), ``every_reply`` (tic-tac-toe: walk every line of replies).
    """
    config = ml_collections.ConfigDict()
    config.name = f"alphazero_{game}"
    config.loop = "alphazero"
    config.seed = 0
    config.game = game

    config.network = network_sections(name="resnet")
    config.search = ml_collections.ConfigDict(
        dict(
            algorithm="gumbel",
            num_simulations=32,
            num_nodes=33,
            max_num_considered_actions=16,
            gumbel_scale=1.0,
            pb_c_init=1.25,
            pb_c_base=19652.0,
            dirichlet_alpha=0.3,
            dirichlet_fraction=0.25,
            reuse_tree=False,
            walk_unroll=1,
        )
    )
    config.selfplay = ml_collections.ConfigDict(
        dict(batch_size=256, max_num_steps=MAX_NUM_STEPS.get(game, 0), temperature_moves=MAX_NUM_STEPS.get(game, 0),
             random_move_prob=0.0, value_target_root_weight=0.0, resign_threshold=-1.0,
             resign_disabled_fraction=0.1)
    )
    config.replay = ml_collections.ConfigDict(dict(capacity=100_000))
    config.train = ml_collections.ConfigDict(
        dict(num_iterations=100, updates_per_iteration=32, batch_size=256, policy_coef=1.0, value_coef=1.0,
             augment_symmetries=False, ema_decay=0.0, time_limit_s=0)
    )
    config.eval = ml_collections.ConfigDict(
        dict(every=20, num_games=64, opponents=("random", "mcts"), baseline_num_simulations=100, num_simulations=0,
             every_reply=False)
    )
    return config


# Longest possible game in pgx (plies), the default length of a self-play scan.
MAX_NUM_STEPS = PGX_GAMES  # one table: mcts.env.PGX_GAMES


def _network_fields(name: str) -> dict:
    """The keyword hyperparameters of network ``name`` (its constructor's, less the loop's own)."""
    import inspect

    from symbiosis_jax.networks import NETWORKS

    return {p.name: p for p in inspect.signature(NETWORKS[name].__init__).parameters.values()
            if p.kind == p.KEYWORD_ONLY and p.name not in ("obs_shape", "num_actions", "rngs")}


def network_sections(*, name: str) -> ml_collections.ConfigDict:
    """``config.network``: ``name`` and a section per network in ``NETWORKS`` at its defaults.

    A network's hyperparameters without a default are left out of its section; a config
    that picks that network sets them.
    """
    from symbiosis_jax.networks import NETWORKS

    sections = {n: ml_collections.ConfigDict({k: p.default for k, p in _network_fields(n).items()
                                               if p.default is not p.empty})
                for n in NETWORKS}
    return ml_collections.ConfigDict(dict(name=name, **sections))


def network_kwargs(network: ml_collections.ConfigDict) -> dict:
    """The keyword hyperparameters the chosen network is built with: its section's fields."""
    return dict(network.get(network.name, {}))


def _check_network(network: ml_collections.ConfigDict) -> None:
    """Every section names a network and holds its fields; the sizes of the built-in ones
    are ones they can be built with (the network is built under jit)."""
    from symbiosis_jax.networks import NETWORKS
    from symbiosis_jax.networks.mlp import check_hidden_sizes
    from symbiosis_jax.networks.resnet import check_resnet_sizes

    for key, section in network.items():
        if key == "name":
            continue
        if key not in NETWORKS:
            owners = [n for n in sorted(NETWORKS) if key in _network_fields(n)]
            hint = (f"; {key!r} is a field of the {owners[0]!r} network: set config.network.{owners[0]}.{key}"
                    if owners else "")
            raise ValueError(f"config.network.{key} is not a network of {tuple(sorted(NETWORKS))}: each network's "
                             f"hyperparameters live in its own section, config.network.<network>.<field>{hint}")
        fields = _network_fields(key)
        if not isinstance(section, (ml_collections.ConfigDict, dict)):
            raise ValueError(f"config.network.{key}={section!r} must be a section of the {key!r} network's "
                             f"fields {list(fields)}")
        for k in section:
            if k not in fields:
                raise ValueError(f"config.network.{key}.{k} is not a field of the {key!r} network; "
                                 f"fields: {list(fields)}")
    given = network_kwargs(network)
    missing = [k for k, p in _network_fields(network.name).items() if p.default is p.empty and k not in given]
    if missing:
        raise ValueError(f"config.network.name={network.name!r} needs config.network.{network.name}."
                         f"{missing[0]} (the network's constructor has no default for it)")
    # The built-in networks' sizes, in every section the config has (a chosen one or not).
    if "resnet" in network:
        kwargs = {k: network.resnet.get(k, p.default) for k, p in _network_fields("resnet").items()}
        check_resnet_sizes(num_channels=kwargs["num_channels"], num_blocks=kwargs["num_blocks"],
                           prefix="config.network.resnet.")
    if "mlp" in network:
        check_hidden_sizes(network.mlp.get("hidden_sizes", _network_fields("mlp")["hidden_sizes"].default),
                           prefix="config.network.mlp.")


def check_network_outputs(config: ml_collections.ConfigDict) -> None:
    """Builds ``config.network`` for ``config.game`` abstractly and checks what it returns.

    Nothing is allocated or compiled (``jax.eval_shape``): the network is constructed and
    applied to a batch of two observations of the game, and must return ``(logits [2, A],
    value [2])`` in floating point. This catches, before the first iteration compiles,
    a network added to ``NETWORKS`` whose config values it cannot be built with or whose
    outputs the loop cannot use.

    Raises:
        ValueError: naming ``config.network`` and the error the network raised, or the
            shapes it returned.
    """
    import jax
    import jax.numpy as jnp
    import pgx

    from symbiosis_jax.mcts.env import pgx_trace_context
    from symbiosis_jax.networks import make_network

    env = pgx.make(config.game)
    with pgx_trace_context(config.game):
        obs = jax.eval_shape(jax.vmap(env.init), jax.random.split(jax.random.PRNGKey(0), 2)).observation
    kwargs = network_kwargs(config.network)
    name = config.network.name

    def build_and_apply(obs):
        net = make_network(name, obs_shape=obs.shape[1:], num_actions=env.num_actions, seed=0, **kwargs)
        return net(obs)

    try:
        out = jax.eval_shape(build_and_apply, obs)
    except Exception as e:  # the network's own error, whatever its type
        raise ValueError(
            f"config.network.name={name!r} with config.network.{name}={kwargs} cannot be built and applied to "
            f"{config.game} observations {obs.dtype.name}{list(obs.shape)}: {type(e).__name__}: {e}"
        ) from e
    want = f"(logits [2, {env.num_actions}], value [2]) in floating point"
    ok = isinstance(out, tuple) and len(out) == 2 and all(
        hasattr(x, "shape") and jnp.issubdtype(x.dtype, jnp.floating) for x in out)
    if not ok or out[0].shape != (2, env.num_actions) or out[1].shape != (2,):
        got = jax.tree.map(lambda x: f"{x.dtype.name}{list(x.shape)}" if hasattr(x, "dtype") else repr(x), out)
        raise ValueError(f"config.network.name={name!r} returned {got} for a batch of 2 {config.game} "
                         f"observations; the loop needs {want}")


def validate_config(config: ml_collections.ConfigDict) -> None:
    """Checks every field the loop reads and raises a clear ``ValueError`` before compiling.

    Raises:
        ValueError: unknown game or network, non-positive sizes, a search that does not
            fit its tree, and so on (batch sizes against the mesh: ``check_divisible``).
    """
    if config.game not in GAMES:
        raise ValueError(f"config.game={config.game!r} is not one of {tuple(sorted(GAMES))}")
    if config.get("mesh") is not None:
        from symbiosis_jax.parallel import check_auto_axis_types

        check_auto_axis_types(config.mesh, loop="AlphaZero")
    from symbiosis_jax.networks import NETWORKS

    if config.network.name not in NETWORKS:
        raise ValueError(f"config.network.name={config.network.name!r} is not one of {tuple(sorted(NETWORKS))}")
    _check_network(config.network)
    positive = {
        "selfplay.batch_size": config.selfplay.batch_size,
        "selfplay.max_num_steps": config.selfplay.max_num_steps,
        "replay.capacity": config.replay.capacity,
        "train.num_iterations": config.train.num_iterations,
        "train.updates_per_iteration": config.train.updates_per_iteration,
        "train.batch_size": config.train.batch_size,
        "eval.num_games": config.eval.num_games,
    }
    for name, value in positive.items():
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"config.{name}={value!r} must be a positive int")
    logging = config.get("logging", {})
    for name in ("log_every", "checkpoint_every", "max_to_keep"):
        value = logging.get(name, 1)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"config.logging.{name}={value!r} must be a positive int")
    for name in ("policy_coef", "value_coef"):
        value = config.train.get(name, 1.0)
        if not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"config.train.{name}={value!r} must be >= 0")
    if "optimizer" in config:
        from symbiosis_jax.training import validate_optimizer_config

        validate_optimizer_config(config.optimizer)
    if config.train.get("time_limit_s", 0) < 0:
        raise ValueError(f"config.train.time_limit_s={config.train.time_limit_s} must be >= 0 (0 = no limit)")
    ema_decay = config.train.get("ema_decay", 0.0)
    if not 0.0 <= ema_decay < 1.0:
        raise ValueError(f"config.train.ema_decay={ema_decay} must be in [0, 1) (0 = no moving average)")
    eval_sims = config.eval.get("num_simulations", 0)
    if not isinstance(eval_sims, int) or eval_sims < 0:
        raise ValueError(f"config.eval.num_simulations={eval_sims!r} must be an int >= 0 "
                         "(0 = search.num_simulations)")
    if "augment_mirror" in config.train:
        raise ValueError("config.train.augment_mirror was replaced by config.train.augment_symmetries (every "
                         "symmetry of the game's board, not only the left-right mirror)")
    if config.train.get("augment_symmetries", False):
        from symbiosis_jax.games.symmetry import SYMMETRY_GAMES

        if config.game not in SYMMETRY_GAMES:
            raise ValueError(f"config.train.augment_symmetries=True: game={config.game!r} has no symmetries "
                             f"defined; allowed: {SYMMETRY_GAMES}")
    if config.selfplay.temperature_moves < 0:
        raise ValueError(f"config.selfplay.temperature_moves={config.selfplay.temperature_moves} must be >= 0")
    if not 0.0 <= config.selfplay.random_move_prob <= 1.0:
        raise ValueError(f"config.selfplay.random_move_prob={config.selfplay.random_move_prob} must be in [0, 1]")
    root_weight = config.selfplay.get("value_target_root_weight", 0.0)
    if not 0.0 <= root_weight <= 1.0:
        raise ValueError(f"config.selfplay.value_target_root_weight={root_weight} must be in [0, 1]")
    if not -1.0 <= config.selfplay.resign_threshold <= 1.0:
        raise ValueError(f"config.selfplay.resign_threshold={config.selfplay.resign_threshold} must be in [-1, 1]")
    if not 0.0 <= config.selfplay.resign_disabled_fraction <= 1.0:
        raise ValueError(
            f"config.selfplay.resign_disabled_fraction={config.selfplay.resign_disabled_fraction} must be in [0, 1]"
        )
    if not isinstance(config.eval.every, int) or config.eval.every < 0:
        raise ValueError(f"config.eval.every={config.eval.every!r} must be an int >= 0 (0 disables evaluation)")
    if config.eval.every_reply and config.game != "tic_tac_toe":
        raise ValueError("config.eval.every_reply=True exists only for config.game='tic_tac_toe'")
    if config.eval.num_games % 2:
        raise ValueError(f"config.eval.num_games={config.eval.num_games} must be even (both sides play)")
    validate_search_config(config.search)
    for opponent in config.eval.opponents:
        if opponent not in ("random", "mcts", "minimax", "network"):
            raise ValueError(
                f"config.eval.opponents contains {opponent!r}; allowed: ('random', 'mcts', 'minimax', 'network')"
            )
        if opponent == "minimax" and config.game != "tic_tac_toe":
            raise ValueError("config.eval.opponents: 'minimax' exists only for config.game='tic_tac_toe'")
    if config.eval.baseline_num_simulations <= 0:
        raise ValueError(f"config.eval.baseline_num_simulations={config.eval.baseline_num_simulations} must be > 0")
    check_network_outputs(config)  # last: it traces the network (well under a second)


def check_divisible(config, mesh) -> None:
    """Checks that the mesh can split self-play games and training minibatches.

    Both are split over the mesh axes of the logical ``batch`` axis (``data`` x ``fsdp``).

    Args:
        config: the experiment config (``selfplay.batch_size``, ``train.batch_size``).
        mesh: the run's device mesh.

    Raises:
        ValueError: a batch size that the data-parallel size does not divide.
    """
    from symbiosis_jax.parallel import data_parallel_size

    size = data_parallel_size(mesh)
    for name in ("selfplay.batch_size", "train.batch_size"):
        value = config.selfplay.batch_size if name.startswith("selfplay") else config.train.batch_size
        if value % size:
            raise ValueError(f"config.{name}={value} must be divisible by {size}, the number of "
                             "ways the mesh splits a batch (config.mesh.data x config.mesh.fsdp)")
