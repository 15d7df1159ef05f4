"""`mlops local up`: the whole system on this machine, behind a local HTTP API, until Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import signal
import threading
from pathlib import Path
from typing import Any

from mlops.shared.resources import REGISTRY_TABLE

DEMO_SPEC = Path(__file__).resolve().parents[1] / "examples" / "churn" / "spec.toml"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("local", help="run the system locally on an embedded AWS stand-in (moto)")
    lsub = p.add_subparsers(dest="local_command", required=True, metavar="ACTION")
    up = lsub.add_parser("up", help="start the local stack and serve the API until Ctrl-C")
    up.add_argument(
        "--port", type=int, default=8080, help="API port on 127.0.0.1 (default 8080; 0 = any free)"
    )
    up.add_argument("--moto-port", type=int, default=0, help="port of the AWS stand-in (default: any free)")
    up.add_argument("--spec", default=str(DEMO_SPEC), help="model spec (default: the demo churn model)")
    up.add_argument("--data", default=None, help="training data for the first model (.csv/.parquet)")
    up.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="time acceleration for schedules (e.g. 3600: an hour a second)",
    )
    up.set_defaults(func=run_up)

    traffic = lsub.add_parser(
        "traffic",
        help="send customers to a running API: predictions, then their true labels",
        description="Rows come from the demo generator (--rows, --seed, --shift) or from --data with "
        "the spec's target column as the labels. Prints a JSON summary.",
    )
    traffic.add_argument("--url", default="http://127.0.0.1:8080", help="the API (default: %(default)s)")
    traffic.add_argument("--rows", type=int, default=1000, help="demo customers to send (default 1000)")
    traffic.add_argument("--seed", type=int, default=1)
    traffic.add_argument("--shift", type=float, default=0.0, help="covariate and concept shift, 0..1")
    traffic.add_argument("--data", default=None, help="send the rows of this file instead (.csv/.parquet)")
    traffic.add_argument("--spec", default=str(DEMO_SPEC), help="the spec naming features and target")
    traffic.add_argument("--no-labels", action="store_true", help="send predictions only")
    traffic.set_defaults(func=run_traffic)


def _training_data(args: argparse.Namespace, spec_path: Path) -> Any:
    from mlops.datagen.churn import generate_churn
    from mlops.model.training import load_table

    if args.data:
        return load_table(args.data)
    if spec_path.resolve() == DEMO_SPEC.resolve():
        return generate_churn(5000, seed=0)
    raise ValueError("--data is required with your own --spec (the first model is trained on it)")


def run_up(args: argparse.Namespace) -> int:
    from mlops.local.first_champion import ensure_champion
    from mlops.local.stack import LocalStack
    from mlops.model.spec import load_spec
    from mlops.shared import clock

    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be between 0 and 65535, not {args.port}")
    if args.speed <= 0:
        raise ValueError("--speed must be positive")
    spec_path = Path(args.spec)
    spec = load_spec(spec_path)
    data = _training_data(args, spec_path)
    if args.speed != 1.0:
        clock.use(clock.SimulatedClock(clock.now(), factor=args.speed))

    def show(kind: str, detail: dict[str, Any]) -> None:
        if kind == "alarm":
            print(f"[{clock.now():%Y-%m-%d %H:%M}] alarm {detail['name']} -> {detail['state']}", flush=True)
        elif kind == "retrain":
            print(f"[{clock.now():%Y-%m-%d %H:%M}] retraining: {detail.get('detail')}", flush=True)
        elif kind == "error":
            print(
                f"[{clock.now():%Y-%m-%d %H:%M}] {detail['component']} error: {detail['error']}", flush=True
            )

    stack = LocalStack(spec, port=args.port, moto_port=args.moto_port, on_event=show)
    stack.start()
    try:
        record = ensure_champion(stack.env, spec, data, actor=f"cli:{getpass.getuser()}")
        stack.start_background()
        # A first monitor run now, so the reports exist from the start; the schedule takes over after.
        stack.run_monitor()
        stack.start_scheduler(factor=args.speed)
        assert stack.gateway is not None
        url = stack.gateway.url
        if record is not None:
            print(
                f"trained and promoted {spec.name} v{record.version} ({spec.primary_metric.value} "
                f"{record.test_metrics.get(spec.primary_metric.value):.3f})"
            )
        print(f"API      {url}   (POST /predict, GET /model, POST /feedback, GET /models, ...)")
        speed = f" at {args.speed:g}x speed" if args.speed != 1.0 else ""
        print(
            f"reports  {stack.reports_url}   (monitoring history: first run done, the next on the "
            f"schedule, {spec.monitoring.schedule}{speed})"
        )
        print(f"AWS      {stack.endpoint}   (moto, the AWS stand-in)")
        print(
            f"try      mlops --endpoint-url {stack.endpoint} registry list "
            f"--table {stack.env[REGISTRY_TABLE.env_var]} --model {spec.name}"
        )
        print("env      " + " ".join(f"{k}={v}" for k, v in sorted(stack.env.items())))
        print("Ctrl-C stops everything.", flush=True)
        stopped = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stopped.set())
        with contextlib.suppress(KeyboardInterrupt):
            while not stopped.wait(0.5):
                pass
    finally:
        stack.stop()
        clock.use(None)
        print("local stack stopped")
    return 0


def run_traffic(args: argparse.Namespace) -> int:
    from mlops.cli.common import print_json
    from mlops.datagen.churn import generate_churn
    from mlops.local.demo import Api
    from mlops.local.traffic import send_traffic
    from mlops.model.spec import load_spec
    from mlops.model.training import frame_rows, load_table

    if args.rows < 1:
        raise ValueError("--rows must be at least 1")
    if not 0 <= args.shift <= 1:
        raise ValueError("--shift must be between 0 and 1")
    spec = load_spec(args.spec)
    if args.data:
        frame = load_table(args.data)
    else:
        frame = generate_churn(
            args.rows, seed=args.seed, covariate_shift=args.shift, concept_shift=args.shift, id_prefix="cust"
        )
    missing = [name for name in spec.feature_names if name not in frame.columns]
    if missing:
        raise ValueError(f"the data lacks the spec's features: {', '.join(missing)}")
    truth = None
    if not args.no_labels:
        if spec.target not in frame.columns:
            raise ValueError(f"the data has no target column '{spec.target}' (or pass --no-labels)")
        truth = [int(v) for v in frame[spec.target]]
    try:
        summary = send_traffic(Api(args.url.rstrip("/")), frame_rows(frame[spec.feature_names]), truth)
    except OSError as err:
        raise ValueError(
            f"cannot reach the API at {args.url}: {err} (is `mlops local up` running?)"
        ) from None
    print_json(summary.as_dict())
    return 0
