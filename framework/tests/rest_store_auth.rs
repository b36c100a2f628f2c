//! The REST store against a real `mlflow server --app-name basic-auth` (`scripts/mlflow-server.sh
//! start --basic-auth`; `scripts/test.sh` starts one and sets `FAIRLAB_MLFLOW_AUTH_SERVER`,
//! `FAIRLAB_MLFLOW_AUTH_USERNAME` and `FAIRLAB_MLFLOW_AUTH_PASSWORD`): the right credentials log a
//! run, wrong or missing ones are a clear 401 at once, never retried.

use std::time::{Duration, Instant};

use fairlab_framework::tracking::rest::client::{ApiError, Auth, ClientSettings};
use fairlab_framework::tracking::{RestStore, RunStatus, Tracker};

/// The server and its admin credentials, or `None` (skipped) when there is none.
fn server() -> Option<(String, String, String)> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match (
        var("FAIRLAB_MLFLOW_AUTH_SERVER"),
        var("FAIRLAB_MLFLOW_AUTH_USERNAME"),
        var("FAIRLAB_MLFLOW_AUTH_PASSWORD"),
    ) {
        (Some(url), Some(user), Some(password)) => Some((url, user, password)),
        _ => {
            assert!(
                std::env::var("FAIRLAB_REQUIRE_MLFLOW").as_deref() != Ok("1"),
                "FAIRLAB_REQUIRE_MLFLOW=1 but no basic-auth server is set (scripts/mlflow-server.sh start --basic-auth)"
            );
            eprintln!("SKIPPED: no basic-auth MLflow server (FAIRLAB_MLFLOW_AUTH_SERVER)");
            None
        }
    }
}

fn store(url: &str, auth: Auth) -> RestStore {
    let settings = ClientSettings {
        auth,
        max_retries: 3,
        ..ClientSettings::default()
    };
    RestStore::with_settings(url, settings).unwrap()
}

#[test]
fn basic_auth_with_the_right_credentials_logs_and_the_wrong_ones_are_refused_at_once() {
    let Some((url, username, password)) = server() else {
        return;
    };
    let admin = store(
        &url,
        Auth::Basic {
            username: username.clone(),
            password,
        },
    );
    let experiment = admin.get_or_create_experiment("fairlab auth check").unwrap();
    let run = admin.create_run(&experiment, "authenticated", 1, &[]).unwrap();
    admin.set_terminated(&run.run_id, RunStatus::Finished, 2).unwrap();
    assert_eq!(admin.get_run(&run.run_id).unwrap().info.status, RunStatus::Finished);

    for auth in [
        Auth::Basic {
            username,
            password: "wrong".to_string(),
        },
        Auth::None,
        Auth::Bearer("a-token-basic-auth-does-not-take".to_string()),
    ] {
        let shown = format!("{auth:?}");
        let started = Instant::now();
        let error = store(&url, auth).get_run(&run.run_id).unwrap_err();
        let api = error
            .downcast_ref::<ApiError>()
            .unwrap_or_else(|| panic!("{shown}: {error:#}"));
        assert_eq!(api.status, 401, "{shown}: {error}");
        assert!(error.to_string().contains("GET "), "the request is named: {error}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{shown}: a 401 is not retried"
        );
    }
}
