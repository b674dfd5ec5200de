"""Wrong arguments are refused before any trial runs; list-only spaces run each point once."""

import warnings

import keras
import numpy as np
import optuna
import pytest
from sklearn.datasets import load_iris
from sklearn.neighbors import KNeighborsClassifier

import tunefleet
from tunefleet.keras import KerasClassifier


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


def knn_search(space, n_iter, **kwargs):
    return tunefleet.RandomizedSearchCV(
        KNeighborsClassifier(), space, n_iter=n_iter, cv=2, random_state=0, **kwargs
    )


def stored_trials(url):
    return {
        s.study_name: s.n_trials for s in optuna.get_all_study_summaries(url, include_best_trial=0)
    }


# -- n_iter larger than a space of lists (issue 13, item 6) -------------------------------
def test_n_iter_beyond_a_list_space_runs_each_point_once_and_warns(tmp_path, iris):
    url = f"sqlite:///{tmp_path}/t.db"
    search = knn_search({"n_neighbors": [1, 5, 9]}, 20, storage=url, study_name="knn")
    with pytest.warns(UserWarning, match=r"total space of parameters 3 is smaller than n_iter=20"):
        search.fit(*iris)
    points = [p["n_neighbors"] for p in search.cv_results_["params"]]
    assert sorted(points) == [1, 5, 9]
    assert stored_trials(url) == {"knn": 3}
    # a resume with the same n_iter runs nothing more
    with pytest.warns(UserWarning, match="Running 3 iterations"):
        knn_search({"n_neighbors": [1, 5, 9]}, 20, storage=url, study_name="knn").fit(*iris)
    assert stored_trials(url) == {"knn": 3}


def test_a_list_space_drawn_whole_runs_in_scikit_learns_grid_order(iris):
    from sklearn.model_selection import ParameterGrid

    space = {"weights": ["uniform", "distance"], "n_neighbors": [1, 5, 9]}
    search = knn_search(space, 6).fit(*iris)
    assert search.cv_results_["params"] == list(ParameterGrid(space))


def test_a_resume_whose_n_iter_now_covers_the_space_runs_only_the_points_left(tmp_path, iris):
    url = f"sqlite:///{tmp_path}/t.db"
    space = {"n_neighbors": [1, 3, 5, 7, 9]}
    knn_search(space, 2, storage=url, study_name="knn").fit(*iris)
    search = knn_search(space, 5, storage=url, study_name="knn").fit(*iris)
    points = [p["n_neighbors"] for p in search.cv_results_["params"]]
    assert sorted(points) == [1, 3, 5, 7, 9]
    assert stored_trials(url) == {"knn": 5}


def test_a_list_space_is_drawn_without_replacement(iris):
    space = {"n_neighbors": [1, 7], "weights": ["uniform", "distance"], "p": [1, 2]}
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # n_iter < 8 points: no warning
        search = knn_search(space, 8 - 1).fit(*iris)
    points = [tuple(sorted(p.items())) for p in search.cv_results_["params"]]
    assert len(points) == 7 == len(set(points))


def test_a_list_of_dicts_space_counts_every_subspace(iris):
    space = [{"n_neighbors": [1, 3]}, {"n_neighbors": range(5, 8), "weights": ["distance"]}]
    with pytest.warns(UserWarning, match="total space of parameters 5 is smaller than n_iter=9"):
        search = knn_search(space, 9).fit(*iris)
    points = [tuple(sorted(p.items())) for p in search.cv_results_["params"]]
    assert len(points) == 5 == len(set(points))


def test_a_distribution_in_the_space_keeps_n_iter(iris):
    space = {"n_neighbors": [1, 3], "leaf_size": tunefleet.Int(10, 12)}
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        search = knn_search(space, 8).fit(*iris)
    assert len(search.cv_results_["params"]) == 8


# -- smaller checks (issue 13, item 10) ------------------------------------------------
def test_an_empty_study_name_is_refused_and_nothing_stored_changes(tmp_path, iris):
    url = f"sqlite:///{tmp_path}/t.db"
    knn_search({"n_neighbors": tunefleet.Int(1, 9)}, 2, storage=url).fit(*iris)
    before = stored_trials(url)
    for name in ("", "   "):
        search = knn_search({"n_neighbors": tunefleet.Int(1, 9)}, 3, storage=url, study_name=name)
        with pytest.raises(ValueError, match=r"study_name=.* is blank"):
            search.fit(*iris)
    assert stored_trials(url) == before


def test_random_state_of_a_wrong_type_names_the_allowed_types(iris):
    search = knn_search({"n_neighbors": tunefleet.Int(1, 9)}, 2)
    search.set_params(random_state="abc")
    with pytest.raises(TypeError, match=r"random_state must be None, an int, a np.random"):
        search.fit(*iris)


@pytest.mark.parametrize("state", [np.random.RandomState(0), np.random.default_rng(0)])
def test_random_state_takes_numpy_generators_as_scikit_learn_does(iris, state):
    search = knn_search({"n_neighbors": tunefleet.Int(1, 30)}, 2)
    search.set_params(random_state=state)
    assert len(search.fit(*iris).cv_results_["params"]) == 2


def build_hp(hp):
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(hp.Int("units", 2, 4), activation="relu")]
    )
    model.add(keras.layers.Dense(3, activation="softmax"))
    model.compile(loss="sparse_categorical_crossentropy")
    return model


def test_tuner_directory_that_is_a_file_is_refused(tmp_path):
    path = tmp_path / "a_file"
    path.write_text("not a folder")
    with pytest.raises(ValueError, match=r"directory: .*a_file.* is a file"):
        tunefleet.RandomSearch(build_hp, objective="val_loss", max_trials=1, directory=path)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "proj").write_text("x")
    with pytest.raises(ValueError, match=r"project_name: .*proj.* is a file"):
        tunefleet.RandomSearch(
            build_hp,
            objective="val_loss",
            max_trials=1,
            directory=tmp_path / "runs",
            project_name="proj",
        )


def test_tuner_empty_study_name_is_refused(tmp_path):
    with pytest.raises(ValueError, match="study_name=''"):
        tunefleet.RandomSearch(
            build_hp, objective="val_loss", max_trials=1, directory=tmp_path, study_name=""
        )


@pytest.mark.parametrize("name", ["epochs", "batch_size", "random_state"])
def test_a_build_argument_named_like_a_wrapper_parameter_is_refused(name):
    namespace = {"keras": keras}
    exec(  # a build function whose argument is `name`
        f"def build_model(units=4, {name}=3):\n"
        "    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])\n"
        "    model.compile(loss='mse')\n"
        "    return model\n",
        namespace,
    )
    with pytest.raises(ValueError, match=rf"argument named '{name}'.*Rename the argument"):
        KerasClassifier(namespace["build_model"], epochs=1)
