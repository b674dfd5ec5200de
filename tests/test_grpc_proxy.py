"""A search through Optuna's gRPC storage proxy (a real proxy server on 127.0.0.1).

The proxy serves a SQLite study here; on a cluster it stands in front of PostgreSQL
(docs/cluster.md). tunefleet takes the proxy as an Optuna storage object.
"""

import os
import socket
import threading

import optuna
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import tunefleet
from tunefleet.storage import open_storage

if os.environ.get("CI") == "true":
    import grpc  # CI must test the proxy: the test extra installs grpcio
else:
    grpc = pytest.importorskip("grpc")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_search_through_the_grpc_storage_proxy_stores_its_budget(tmp_path):
    from optuna.storages import GrpcStorageProxy

    backend = open_storage(f"sqlite:///{tmp_path / 'tune.db'}")
    port = free_port()
    threading.Thread(
        target=optuna.storages.run_grpc_proxy_server,
        args=(backend,),
        kwargs={"host": "127.0.0.1", "port": port},
        daemon=True,
    ).start()
    grpc.channel_ready_future(grpc.insecure_channel(f"127.0.0.1:{port}")).result(timeout=30)
    X, y = load_iris(return_X_y=True)
    search = tunefleet.RandomizedSearchCV(
        LogisticRegression(max_iter=300),
        {"C": tunefleet.Float(1e-2, 1e2, log=True)},
        n_iter=5,
        cv=2,
        storage=GrpcStorageProxy(host="127.0.0.1", port=port),
        study_name="proxied",
        random_state=0,
        progress=False,
    ).fit(X, y)
    assert len(search.cv_results_["params"]) == 5 and search.best_score_ > 0.8
    trials = optuna.load_study(study_name="proxied", storage=backend).trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 5  # written through the proxy
    assert {t.params["C"] for t in trials} == set(search.cv_results_["param_C"])
