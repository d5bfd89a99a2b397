//! HaproxyRouter against a real HAProxy 2.6 in front of real busybox httpd
//! servers, all on loopback. Only `zero_downtime_*` needs Docker: it swaps
//! two real containers under load.

mod support;

#[path = "../bench/deploy_swap.rs"]
mod deploy_swap;

use std::collections::BTreeMap;
use std::time::Duration;

use support::haproxy::{HaproxyServer, WebServer};
use support::load::{Load, LoadConfig};
use support::swap::{self, Containers};
use tuner::deploy::router::haproxy::{HaproxyConfig, HaproxyRouter};
use tuner::deploy::router::{Backend, Router, RouterError};

/// These tests measure requests per second and swap times on a 2-core
/// machine, with HAProxy, Docker and a load generator each wanting a core:
/// run them one at a time so none starves another into a false failure.
static ALONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn alone() -> tokio::sync::MutexGuard<'static, ()> {
    ALONE.lock().await
}

fn router(haproxy: &HaproxyServer) -> HaproxyRouter {
    HaproxyRouter::new(HaproxyConfig::new(haproxy.socket(), "app")).unwrap()
}

fn backend(name: &str, web: &WebServer) -> Backend {
    Backend {
        name: name.to_string(),
        address: web.address(),
    }
}

/// `n` GETs of `/id` through HAProxy: marker -> count. Any non-200 panics.
fn markers(haproxy: &HaproxyServer, n: usize) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for _ in 0..n {
        let (status, body) = haproxy.get("/id").unwrap();
        assert_eq!(status, 200, "GET /id through HAProxy: {body}");
        *seen.entry(body.trim().to_string()).or_default() += 1;
    }
    seen
}

async fn server_names(router: &HaproxyRouter) -> Vec<String> {
    router
        .servers()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_swap_sequence_moves_traffic_from_blue_to_green() {
    let _alone = alone().await;
    let blue_web = WebServer::start("blue");
    let mut green_web = WebServer::start("green");
    let haproxy = HaproxyServer::start(&[("blue", blue_web.address())]);
    let router = router(&haproxy);
    let (blue, green) = (backend("blue", &blue_web), backend("green", &green_web));
    assert_eq!(router.kind(), "haproxy");

    assert_eq!(markers(&haproxy, 10), BTreeMap::from([("blue".into(), 10)]));

    // Standby: registered, checked, but weight 0 gets no request, not even
    // before its first check (when HAProxy already counts it UP).
    router.add_standby(&green).await.unwrap();
    let g = router
        .server("green")
        .await
        .unwrap()
        .expect("green registered");
    assert_eq!(g.weight, 0, "{g:?}");
    assert_eq!(g.addr, green_web.address());
    assert_eq!(markers(&haproxy, 30), BTreeMap::from([("blue".into(), 30)]));

    router
        .wait_healthy(&green, Duration::from_secs(10))
        .await
        .unwrap();
    let g = router.server("green").await.unwrap().unwrap();
    assert_eq!((g.status.as_str(), g.check_status.as_str()), ("UP", "L7OK"));
    assert_eq!(markers(&haproxy, 20), BTreeMap::from([("blue".into(), 20)]));

    router.promote(&green).await.unwrap();
    let both = markers(&haproxy, 40);
    assert!(both.get("green").copied().unwrap_or(0) >= 10, "{both:?}");
    assert!(both.get("blue").copied().unwrap_or(0) >= 10, "{both:?}");

    router.drain(&blue, Duration::from_secs(10)).await.unwrap();
    let b = router.server("blue").await.unwrap().unwrap();
    assert_eq!(b.status, "MAINT", "{b:?}");
    assert_eq!(
        markers(&haproxy, 20),
        BTreeMap::from([("green".into(), 20)])
    );

    // The blue container goes away, then the server is deleted.
    drop(blue_web);
    router.retire(&blue).await.unwrap();
    assert_eq!(server_names(&router).await, vec!["green".to_string()]);
    assert_eq!(
        markers(&haproxy, 10),
        BTreeMap::from([("green".into(), 10)])
    );

    // Idempotent: retiring again, or removing what is gone, succeeds.
    router.retire(&blue).await.unwrap();
    router.remove(&blue).await.unwrap();
    green_web.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unhealthy_green_times_out_naming_its_check_and_is_removed() {
    let _alone = alone().await;
    let blue_web = WebServer::start("blue");
    let green_web = WebServer::start("green");
    green_web.break_health();
    let haproxy = HaproxyServer::start(&[("blue", blue_web.address())]);
    let router = router(&haproxy);
    let green = backend("green", &green_web);

    router.add_standby(&green).await.unwrap();
    let err = router
        .wait_healthy(&green, Duration::from_secs(2))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, RouterError::Timeout { .. }), "{msg}");
    assert!(msg.contains("app/green"), "{msg}");
    assert!(msg.contains("L7STS"), "{msg}");
    assert_eq!(markers(&haproxy, 20), BTreeMap::from([("blue".into(), 20)]));

    // Draining blue now would leave nobody to serve: refused, nothing changed.
    let err = router
        .drain(&backend("blue", &blue_web), Duration::from_secs(2))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cut the service off"), "{err}");
    assert_eq!(router.server("blue").await.unwrap().unwrap().status, "UP");

    router.remove(&green).await.unwrap();
    assert_eq!(server_names(&router).await, vec!["blue".to_string()]);
    assert_eq!(markers(&haproxy, 10), BTreeMap::from([("blue".into(), 10)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_after_drain_puts_blue_back() {
    let _alone = alone().await;
    let blue_web = WebServer::start("blue");
    let green_web = WebServer::start("green");
    let haproxy = HaproxyServer::start(&[("blue", blue_web.address())]);
    let router = router(&haproxy);
    let (blue, green) = (backend("blue", &blue_web), backend("green", &green_web));

    router.add_standby(&green).await.unwrap();
    router
        .wait_healthy(&green, Duration::from_secs(10))
        .await
        .unwrap();
    router.promote(&green).await.unwrap();
    router.drain(&blue, Duration::from_secs(10)).await.unwrap();

    // Undo: blue takes traffic again, green goes.
    router.promote(&blue).await.unwrap();
    router
        .wait_healthy(&blue, Duration::from_secs(10))
        .await
        .unwrap();
    router.remove(&green).await.unwrap();
    assert_eq!(server_names(&router).await, vec!["blue".to_string()]);
    assert_eq!(markers(&haproxy, 10), BTreeMap::from([("blue".into(), 10)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_standby_is_idempotent_for_the_same_address_only() {
    let _alone = alone().await;
    let blue_web = WebServer::start("blue");
    let green_web = WebServer::start("green");
    let haproxy = HaproxyServer::start(&[("blue", blue_web.address())]);
    let router = router(&haproxy);
    let green = backend("green", &green_web);

    router.add_standby(&green).await.unwrap();
    router.add_standby(&green).await.unwrap();
    assert_eq!(
        server_names(&router).await,
        vec!["blue".to_string(), "green".to_string()]
    );

    let elsewhere = Backend {
        name: "green".into(),
        address: "127.0.0.1:1".into(),
    };
    let msg = router
        .add_standby(&elsewhere)
        .await
        .unwrap_err()
        .to_string();
    assert!(msg.contains("already exists"), "{msg}");
    assert!(msg.contains(&green_web.address()), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_backend_and_missing_socket_are_clear_errors() {
    let _alone = alone().await;
    let blue_web = WebServer::start("blue");
    let haproxy = HaproxyServer::start(&[("blue", blue_web.address())]);
    let green = Backend {
        name: "green".into(),
        address: "127.0.0.1:1".into(),
    };

    let wrong = HaproxyRouter::new(HaproxyConfig::new(haproxy.socket(), "nope")).unwrap();
    let msg = wrong.add_standby(&green).await.unwrap_err().to_string();
    assert!(msg.contains("haproxy backend nope"), "{msg}");
    assert!(
        msg.contains("`add server nope/green 127.0.0.1:1 weight 0 check"),
        "{msg}"
    );
    assert!(msg.contains("No such backend"), "{msg}");
    assert!(msg.contains("fix `backend`"), "{msg}");
    let msg = wrong.servers().await.unwrap_err().to_string();
    assert!(msg.contains("`show stat nope 4 -1`"), "{msg}");
    assert!(msg.contains("No such proxy"), "{msg}");

    let missing = haproxy.path().join("missing.sock");
    let gone = HaproxyRouter::new(HaproxyConfig::new(&missing, "app")).unwrap();
    let msg = gone.add_standby(&green).await.unwrap_err().to_string();
    assert!(msg.contains(&missing.display().to_string()), "{msg}");
    assert!(msg.contains("stats socket"), "{msg}");

    // Bad names never reach HAProxy.
    let router = router(&haproxy);
    let evil = Backend {
        name: "g; shutdown frontend fe".into(),
        address: "127.0.0.1:1".into(),
    };
    let msg = router.add_standby(&evil).await.unwrap_err().to_string();
    assert!(msg.contains("not a valid HAProxy name"), "{msg}");
    assert_eq!(markers(&haproxy, 3), BTreeMap::from([("blue".into(), 3)]));
}

/// The requirement, end to end: the real `tuner deploy` binary
/// re-sizes a container behind HAProxy while >= 200 req/s go through
/// HAProxy's frontend (a new connection per request), and not one request
/// fails. Blue's server is found by its address; green is registered on its
/// published 127.0.0.1 port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_downtime_swap_under_load_loses_no_request() {
    let _alone = alone().await;
    let containers = Containers::new("zd");
    let (blue_web, haproxy, router) =
        swap::blue_behind_haproxy(&containers, "blue", "0.5", "64M").await;
    let blue_id = swap::docker(&["inspect", "-f", "{{.Id}}", &blue_web.name]).unwrap();
    let blue_marker = swap::marker(&blue_web.name, "blue");
    assert_eq!(
        markers(&haproxy, 5),
        BTreeMap::from([(blue_marker.clone(), 5)])
    );
    let config = swap::TunerConfig::haproxy(&haproxy.socket(), "app");

    let mut load_config = LoadConfig::new(haproxy.frontend_port, "/id");
    load_config.rate = 400.0;
    // New connection per request: 32 in flight keeps >= 200 req/s even when
    // other jobs slow each request down.
    load_config.workers = 32;
    load_config.max_duration = Duration::from_secs(90);
    load_config.max_requests = 40_000;
    let load = Load::start(load_config);
    tokio::time::sleep(Duration::from_secs(1)).await;

    let run = swap::tuner_deploy(
        &support::tuner_bin(),
        &config.path(),
        &blue_web.name,
        "1.0",
        "128M",
        Duration::from_secs(80),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let report = load.finish().await;
    let run =
        run.unwrap_or_else(|e| panic!("tuner deploy failed: {e}\nload: {}", report.summary()));
    eprintln!(
        "tuner deploy: wall {:?}, drain {:?}, traffic on green after {:?}; phases {}; load: {}",
        run.wall,
        run.drain,
        run.to_green,
        run.json["result"]["phases"],
        report.summary()
    );

    assert_eq!(report.failed(), 0, "{}", report.summary());
    assert!(report.rate() >= 200.0, "{}", report.summary());
    assert!(report.sent > 1000, "{}", report.summary());

    // Exactly one container with the service's name: a new one, with the
    // new limits read back, and no green left over.
    let named = swap::docker(&[
        "ps",
        "-aq",
        "--no-trunc",
        "--filter",
        &format!("name=^/{}$", blue_web.name),
    ])
    .unwrap();
    let ids: Vec<&str> = named.split_whitespace().collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_ne!(ids[0], blue_id, "a new container carries the name");
    assert!(!swap::exists(&format!("{}_tuner_green", blue_web.name)));
    assert_eq!(swap::limits(&blue_web.name), (1_000_000_000, 128 << 20));
    let read_back = &run.json["result"]["read_back"];
    assert_eq!(read_back["cpus"], 1.0, "{read_back}");
    assert_eq!(read_back["memory"], 128u64 << 20, "{read_back}");

    // HAProxy: the service keeps its server `blue` (the name haproxy.cfg
    // gives it), now at the new container's port; the standby is gone.
    let port = published_port(&blue_web.name);
    let servers = router.servers().await.unwrap();
    assert_eq!(servers.len(), 1, "{servers:?}");
    assert_eq!(servers[0].name, "blue");
    assert_eq!(run.router_blue, "blue");
    assert_ne!(run.router_green, "blue");
    assert_eq!(servers[0].addr, format!("127.0.0.1:{port}"));
    assert!(servers[0].is_healthy(), "{servers:?}");
    // Every answer now comes from the new container, told apart from blue
    // by its own hostname although it copies blue's environment.
    let green_marker = swap::marker(&blue_web.name, "blue");
    assert_ne!(green_marker, blue_marker);
    assert_eq!(
        markers(&haproxy, 10),
        BTreeMap::from([(green_marker.clone(), 10)])
    );
    // Under load both answered, and nothing else did.
    let answered: std::collections::BTreeSet<&String> = report.bodies.keys().collect();
    assert_eq!(
        answered,
        [&blue_marker, &green_marker].into_iter().collect(),
        "{}",
        report.summary()
    );
    let router_result = &run.json["result"]["router"];
    assert_eq!(
        router_result["server"],
        format!("blue 127.0.0.1:{port}"),
        "{router_result}"
    );
    // No state file configured: the result says a reload would lose it.
    assert!(
        router_result["warning"]
            .as_str()
            .is_some_and(|w| w.contains("state_file")),
        "{router_result}"
    );
}

/// The host port the container `name` publishes for 8080.
fn published_port(name: &str) -> String {
    swap::docker(&[
        "inspect",
        "-f",
        "{{(index (index .NetworkSettings.Ports \"8080/tcp\") 0).HostPort}}",
        name,
    ])
    .unwrap()
}

/// The reload requirement: after `tuner deploy`, HAProxy is
/// reloaded as users reload it (master-worker, `kill -USR2`) while >= 200
/// req/s go through it, and keeps routing to the new container with not one
/// failed request. It works because the service keeps the server name
/// haproxy.cfg defines (re-pointed at green) and tuner wrote HAProxy's
/// server state, which the reload reads back. A second deploy after the
/// reload finds the same server again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_after_deploy_keeps_routing_to_the_new_container_under_load() {
    let _alone = alone().await;
    let containers = Containers::new("reload");
    let blue_web = containers.run("blue", "0.5", "64M", None);
    containers.adopt(&format!("{}_tuner_green", blue_web.name));
    let mut haproxy = HaproxyServer::start_reloadable(&[("web", blue_web.address())]);
    let router = router(&haproxy);
    router
        .wait_healthy(
            &Backend {
                name: "web".into(),
                address: blue_web.address(),
            },
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    swap::wait_docker_healthy(&blue_web.name, Duration::from_secs(30)).unwrap();
    let state_file = haproxy.state_file();
    let config = swap::TunerConfig::haproxy_with_state(&haproxy.socket(), "app", Some(&state_file));
    let blue_marker = swap::marker(&blue_web.name, "blue");

    let mut load_config = LoadConfig::new(haproxy.frontend_port, "/id");
    load_config.rate = 400.0;
    load_config.workers = 32;
    load_config.max_duration = Duration::from_secs(120);
    load_config.max_requests = 60_000;
    let load = Load::start(load_config);
    tokio::time::sleep(Duration::from_millis(500)).await;

    let run = swap::tuner_deploy(
        &support::tuner_bin(),
        &config.path(),
        &blue_web.name,
        "1.0",
        "128M",
        Duration::from_secs(80),
    )
    .await;
    let run = match run {
        Ok(run) => run,
        Err(e) => panic!(
            "tuner deploy failed: {e}\nload: {}",
            load.finish().await.summary()
        ),
    };
    let green_marker = swap::marker(&blue_web.name, "blue");
    assert_ne!(green_marker, blue_marker);
    let port = published_port(&blue_web.name);
    assert_eq!(
        run.json["result"]["router"]["state_file"],
        state_file.display().to_string()
    );
    let saved = std::fs::read_to_string(&state_file).unwrap();
    assert!(
        saved
            .lines()
            .any(|l| l.contains(" app ") && l.contains(" web ") && l.contains(&port)),
        "{saved}"
    );

    tokio::time::sleep(Duration::from_millis(500)).await;
    let on_green_before = markers(&haproxy, 5);
    haproxy.reload();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let report = load.finish().await;
    eprintln!(
        "deploy wall {:?}; load across deploy and reload: {}",
        run.wall,
        report.summary()
    );
    assert_eq!(on_green_before, BTreeMap::from([(green_marker.clone(), 5)]));
    assert_eq!(report.failed(), 0, "{}", report.summary());
    assert!(report.rate() >= 200.0, "{}", report.summary());

    // After the reload: the config's server, at green's port, healthy, and
    // every answer from green.
    let servers = router.servers().await.unwrap();
    assert_eq!(servers.len(), 1, "{servers:?}");
    assert_eq!(servers[0].name, "web");
    assert_eq!(servers[0].addr, format!("127.0.0.1:{port}"));
    assert_eq!(
        markers(&haproxy, 10),
        BTreeMap::from([(green_marker.clone(), 10)])
    );

    // The next deploy, after the reload, swaps the same server again.
    let again = swap::tuner_deploy(
        &support::tuner_bin(),
        &config.path(),
        &blue_web.name,
        "0.5",
        "64M",
        Duration::from_secs(80),
    )
    .await
    .unwrap();
    assert_eq!(again.router_blue, "web");
    haproxy.reload();
    let third = swap::marker(&blue_web.name, "blue");
    assert!(third != green_marker && third != blue_marker);
    let servers = router.servers().await.unwrap();
    assert_eq!(servers.len(), 1, "{servers:?}");
    assert_eq!(
        servers[0].addr,
        format!("127.0.0.1:{}", published_port(&blue_web.name))
    );
    assert_eq!(markers(&haproxy, 10), BTreeMap::from([(third, 10)]));
}

/// `--dry-run` runs HAProxy's preflight and shows it: the backend's
/// servers, which one is blue (found by its address), the name and address
/// green will get, and the haproxy.cfg line to update; nothing changes.
/// A backend HAProxy does not have, or no server for blue, fails the plan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_shows_the_haproxy_preflight_and_blue_server() {
    let _alone = alone().await;
    let containers = Containers::new("dry");
    let (blue_web, haproxy, router) =
        swap::blue_behind_haproxy(&containers, "blue", "0.5", "64M").await;
    let config = swap::TunerConfig::haproxy(&haproxy.socket(), "app");
    let bin = support::tuner_bin();
    let limit = Duration::from_secs(60);
    let args = ["deploy", &blue_web.name, "1.0", "128M", "--dry-run"];
    let out = swap::run_tuner(&bin, &config.path(), &args, &[], limit)
        .await
        .unwrap();
    assert!(out.status.success(), "{}", swap::show(&out));
    let plan = String::from_utf8_lossy(&out.stdout);
    for want in [
        "router haproxy",
        &format!(
            "Router: haproxy backend app via {}",
            haproxy.socket().display()
        ),
        "preflight OK",
        &format!("server blue {} weight 1", blue_web.address()),
        "<- blue",
        "green will be added as server blue_tuner_green",
        "then blue's server blue will point at it",
        "at weight 0",
        "at once (`rm -f`)",
        "a reload of HAProxy goes back to haproxy.cfg",
        "state_file",
        "Dry run",
    ] {
        assert!(plan.contains(want), "missing {want:?} in\n{plan}");
    }
    let names: Vec<String> = router
        .servers()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, vec!["blue".to_string()]);
    assert!(!swap::exists(&format!("{}_tuner_green", blue_web.name)));

    // JSON carries the preflight too.
    let mut json_args = vec!["--output", "json"];
    json_args.extend(args);
    let out = swap::run_tuner(&bin, &config.path(), &json_args, &[], limit)
        .await
        .unwrap();
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", swap::show(&out)));
    assert_eq!(v["plan"]["router_blue"], "blue");
    assert_eq!(
        v["plan"]["router_check"]["servers"][0]["address"],
        blue_web.address()
    );

    // A backend HAProxy does not know: the plan fails naming it, as a
    // config error (exit 2).
    let wrong = swap::TunerConfig::haproxy(&haproxy.socket(), "nope");
    let out = swap::run_tuner(&bin, &wrong.path(), &args, &[], limit)
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}", swap::show(&out));

    // HAProxy not there: a runtime failure (exit 1) naming the socket.
    let gone = haproxy.path().join("gone.sock");
    let missing = swap::TunerConfig::haproxy(&gone, "app");
    let out = swap::run_tuner(&bin, &missing.path(), &args, &[], limit)
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", swap::show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&gone.display().to_string()),
        "{}",
        swap::show(&out)
    );
    assert!(
        err.contains("No such proxy") && err.contains("fix `backend`"),
        "{err}"
    );

    // No server of the backend is blue: usage error (exit 2), listing them.
    let other = HaproxyServer::start(&[("web9", "127.0.0.1:1".to_string())]);
    let cfg = swap::TunerConfig::haproxy(&other.socket(), "app");
    let out = swap::run_tuner(&bin, &cfg.path(), &args, &[], limit)
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}", swap::show(&out));
    assert!(
        err.contains("cannot tell which server is blue")
            && err.contains("web9 127.0.0.1:1")
            && err.contains("deploy.router.server"),
        "{err}"
    );
}

/// A deploy killed (abort, like `kill -9`) after each phase that touches
/// HAProxy is finished or undone by `tuner deploy status`, under load, and
/// not one request fails across the crash and the recovery. After `drain`
/// (green has all the traffic, blue is in MAINT) the undo must give blue its
/// traffic back and see it healthy before green leaves; after `stop-blue`
/// (blue's container already removed) recovery must still delete blue's
/// server and keep green's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_in_any_haproxy_phase_is_recovered_under_load_without_a_failed_request() {
    let _alone = alone().await;
    for (phase, forward) in [
        ("health", false),
        ("switch", false),
        ("drain", false),
        ("stop-blue", true),
        ("remove-blue", true),
    ] {
        let containers = Containers::new(&format!("crash-{phase}"));
        let (blue_web, haproxy, router) =
            swap::blue_behind_haproxy(&containers, "blue", "0.5", "64M").await;
        let blue_id = swap::docker(&["inspect", "-f", "{{.Id}}", &blue_web.name]).unwrap();
        let config = swap::TunerConfig::haproxy(&haproxy.socket(), "app");
        let bin = support::tuner_bin();
        let limit = Duration::from_secs(80);

        let mut load_config = LoadConfig::new(haproxy.frontend_port, "/id");
        load_config.rate = 400.0;
        load_config.max_duration = Duration::from_secs(90);
        load_config.max_requests = 40_000;
        let load = Load::start(load_config);
        tokio::time::sleep(Duration::from_millis(500)).await;

        let deploy = [
            "deploy",
            &blue_web.name,
            "1.0",
            "128M",
            "--health-interval",
            "1s",
            "--drain",
            "10s",
        ];
        let crashed = swap::run_tuner(
            &bin,
            &config.path(),
            &deploy,
            &[("TUNER_DEPLOY_CRASH_AFTER", phase)],
            limit,
        )
        .await;
        let after_crash = router.servers().await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let status = swap::run_tuner(
            &bin,
            &config.path(),
            &["deploy", "status", &blue_web.name],
            &[],
            limit,
        )
        .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let report = load.finish().await;
        eprintln!("{phase}: load: {}", report.summary());

        let crashed = crashed.unwrap();
        assert!(
            String::from_utf8_lossy(&crashed.stderr).contains("aborting as asked"),
            "{phase}: {}",
            swap::show(&crashed)
        );
        let after_crash = after_crash.unwrap();
        if phase == "drain" {
            let blue_state = after_crash
                .iter()
                .find(|s| s.name == "blue")
                .map(|s| s.status.clone());
            assert_eq!(blue_state.as_deref(), Some("MAINT"), "{after_crash:?}");
        }
        let status = status.unwrap();
        assert!(status.status.success(), "{phase}: {}", swap::show(&status));
        let stdout = String::from_utf8_lossy(&status.stdout);
        let verb = if forward { "finished it" } else { "undid it" };
        assert!(stdout.contains(verb), "{phase}: {stdout}");

        assert_eq!(report.failed(), 0, "{phase}: {}", report.summary());
        // Real load, not a trickle (the bound that matters, 0 failed, is above;
        // the >= 200 req/s bar is the zero-downtime test's).
        assert!(report.rate() >= 150.0, "{phase}: {}", report.summary());

        // One server, healthy and weighted; one container with the name.
        let servers = router.servers().await.unwrap();
        assert_eq!(servers.len(), 1, "{phase}: {servers:?}");
        assert!(
            servers[0].is_healthy() && servers[0].weight > 0,
            "{phase}: {servers:?}"
        );
        assert!(!swap::exists(&format!("{}_tuner_green", blue_web.name)));
        let id = swap::docker(&["inspect", "-f", "{{.Id}}", &blue_web.name]).unwrap();
        // Either way the service keeps its server `blue`, at the address
        // of the container that now carries the name.
        assert_eq!(servers[0].name, "blue", "{phase}");
        assert_eq!(
            servers[0].addr,
            format!("127.0.0.1:{}", published_port(&blue_web.name)),
            "{phase}"
        );
        if forward {
            assert_ne!(id, blue_id, "{phase}");
            assert_eq!(swap::limits(&blue_web.name), (1_000_000_000, 128 << 20));
        } else {
            assert_eq!(id, blue_id, "{phase}");
            assert_eq!(swap::limits(&blue_web.name), (500_000_000, 64 << 20));
        }
        let now = swap::marker(&blue_web.name, "blue");
        assert_eq!(markers(&haproxy, 10), BTreeMap::from([(now, 10)]));
    }
}

/// Green not healthy in time: the deploy fails naming the phase, green
/// leaves HAProxy and Docker, blue keeps every request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn green_not_healthy_in_time_is_removed_from_haproxy_and_blue_keeps_serving() {
    let _alone = alone().await;
    let containers = Containers::new("late");
    let (blue_web, haproxy, router) =
        swap::blue_behind_haproxy(&containers, "blue", "0.5", "64M").await;
    let config = swap::TunerConfig::haproxy(&haproxy.socket(), "app");
    let mut load_config = LoadConfig::new(haproxy.frontend_port, "/id");
    load_config.rate = 300.0;
    load_config.max_duration = Duration::from_secs(60);
    let load = Load::start(load_config);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // 1 ms: green cannot start and pass HAProxy's first check (100 ms
    // after it is added) in that time.
    let out = swap::run_tuner(
        &support::tuner_bin(),
        &config.path(),
        &[
            "deploy",
            &blue_web.name,
            "1.0",
            "128M",
            "--health-timeout",
            "1ms",
        ],
        &[],
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let report = load.finish().await;
    assert_eq!(out.status.code(), Some(1), "{}", swap::show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    // Not healthy in time by its own healthcheck (health) or, if that
    // passed at once, by HAProxy's (switch).
    assert!(
        (err.contains("failed in phase health") || err.contains("failed in phase switch"))
            && err.contains("green")
            && err.contains("left as it was"),
        "{err}"
    );
    assert_eq!(report.failed(), 0, "{}", report.summary());
    let servers = router.servers().await.unwrap();
    assert_eq!(servers.len(), 1, "{servers:?}");
    assert_eq!(servers[0].name, "blue");
    assert!(!swap::exists(&format!("{}_tuner_green", blue_web.name)));
    assert_eq!(swap::limits(&blue_web.name), (500_000_000, 64 << 20));
}

/// Starts a slow request to `/cgi-bin/slow?<secs>` through HAProxy, on a
/// thread, while only blue is in the backend.
fn slow_request(haproxy: &HaproxyServer, secs: &str) -> std::thread::JoinHandle<(u16, String)> {
    let port = haproxy.frontend_port;
    let path = format!("/cgi-bin/slow?{secs}");
    std::thread::spawn(move || support::haproxy::http_get(port, &path).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_waits_for_in_flight_requests_then_blue_goes_to_maint() {
    let _alone = alone().await;
    let blue_web = WebServer::start("blue");
    let green_web = WebServer::start("green");
    let haproxy = HaproxyServer::start(&[("blue", blue_web.address())]);
    let router = router(&haproxy);
    let (blue, green) = (backend("blue", &blue_web), backend("green", &green_web));

    let slow = slow_request(&haproxy, "2");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(router.server("blue").await.unwrap().unwrap().sessions, 1);

    router.add_standby(&green).await.unwrap();
    router
        .wait_healthy(&green, Duration::from_secs(10))
        .await
        .unwrap();
    router.promote(&green).await.unwrap();
    router.drain(&blue, Duration::from_secs(10)).await.unwrap();
    // Drain returned only once the slow request was answered.
    assert!(
        slow.is_finished(),
        "drain returned with a request in flight"
    );
    assert_eq!(slow.join().unwrap(), (200, "slow-blue\n".to_string()));
    assert_eq!(
        router.server("blue").await.unwrap().unwrap().status,
        "MAINT"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_timeout_names_the_sessions_left_and_cuts_nothing() {
    let _alone = alone().await;
    let blue_web = WebServer::start("blue");
    let green_web = WebServer::start("green");
    let haproxy = HaproxyServer::start(&[("blue", blue_web.address())]);
    let router = router(&haproxy);
    let (blue, green) = (backend("blue", &blue_web), backend("green", &green_web));

    let slow = slow_request(&haproxy, "3");
    tokio::time::sleep(Duration::from_millis(300)).await;
    router.add_standby(&green).await.unwrap();
    router
        .wait_healthy(&green, Duration::from_secs(10))
        .await
        .unwrap();
    router.promote(&green).await.unwrap();
    let err = router
        .drain(&blue, Duration::from_millis(500))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, RouterError::Timeout { .. }), "{msg}");
    assert!(msg.contains("in-flight requests of app/blue"), "{msg}");
    assert!(msg.contains("1 sessions"), "{msg}");
    // Left draining (not in maintenance), and the request still completes.
    assert_eq!(
        router.server("blue").await.unwrap().unwrap().status,
        "DRAIN"
    );
    assert_eq!(
        markers(&haproxy, 10),
        BTreeMap::from([("green".into(), 10)])
    );
    // Retire with the request still in flight: MAINT lets it finish and
    // `del server` is retried while HAProxy says the server has connections.
    assert!(!slow.is_finished());
    router.retire(&blue).await.unwrap();
    // HAProxy refuses `del server` while the session exists, so retire
    // returned as the answer went out.
    assert!(
        support::wait_until(Duration::from_secs(1), || slow.is_finished()),
        "retire returned long before the in-flight request ended"
    );
    assert_eq!(slow.join().unwrap(), (200, "slow-blue\n".to_string()));
    assert_eq!(server_names(&router).await, vec!["green".to_string()]);
    drop(blue_web);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_checks_level_backend_and_algorithm() {
    let _alone = alone().await;
    let blue_web = WebServer::start("blue");
    let haproxy = HaproxyServer::start(&[("blue", blue_web.address())]);

    let servers = router(&haproxy).preflight().await.unwrap();
    assert_eq!(servers.len(), 1);
    assert_eq!(servers[0].name, "blue");

    let operator =
        HaproxyRouter::new(HaproxyConfig::new(haproxy.operator_socket(), "app")).unwrap();
    let msg = operator.preflight().await.unwrap_err().to_string();
    assert!(
        msg.contains("level \"operator\"") && msg.contains("level admin"),
        "{msg}"
    );
    let green = Backend {
        name: "green".into(),
        address: "127.0.0.1:1".into(),
    };
    let msg = operator.add_standby(&green).await.unwrap_err().to_string();
    assert!(
        msg.contains("Permission denied") && msg.contains("level admin"),
        "{msg}"
    );

    let fixed = HaproxyRouter::new(HaproxyConfig::new(haproxy.socket(), "fixed")).unwrap();
    let msg = fixed.preflight().await.unwrap_err().to_string();
    assert!(msg.contains("static-rr"), "{msg}");
    let msg = fixed.add_standby(&green).await.unwrap_err().to_string();
    assert!(msg.contains("balance roundrobin"), "{msg}");

    let nope = HaproxyRouter::new(HaproxyConfig::new(haproxy.socket(), "nope")).unwrap();
    let msg = nope.preflight().await.unwrap_err().to_string();
    assert!(
        msg.contains("No such proxy") && msg.contains("fix `backend`"),
        "{msg}"
    );
    eprintln!("{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_gone_while_waiting_fails_fast_naming_the_socket() {
    let _alone = alone().await;
    let blue_web = WebServer::start("blue");
    let green_web = WebServer::start("green");
    green_web.break_health();
    let mut haproxy = HaproxyServer::start(&[("blue", blue_web.address())]);
    let router = router(&haproxy);
    let green = backend("green", &green_web);
    router.add_standby(&green).await.unwrap();

    let started = std::time::Instant::now();
    let waiting = tokio::spawn({
        let router = router.clone();
        let green = green.clone();
        async move { router.wait_healthy(&green, Duration::from_secs(30)).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    haproxy.stop();
    let err = waiting.await.unwrap().unwrap_err();
    let msg = err.to_string();
    // A few retries, not the 30 s timeout.
    assert!(started.elapsed() < Duration::from_secs(5), "{msg}");
    assert!(msg.contains("`show stat app 4 -1`"), "{msg}");
    assert!(
        msg.contains(&haproxy.socket().display().to_string()),
        "{msg}"
    );
}

/// The zero-failure claims are only as good as the counter: it must see
/// refused connections, error statuses and truncated bodies, and stop at
/// its bounds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_generator_counts_every_failure_kind_and_stays_bounded() {
    let _alone = alone().await;
    use support::load::parse_response;
    assert_eq!(
        parse_response(b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nblue\n"),
        Ok("blue".to_string())
    );
    assert_eq!(
        parse_response(b"HTTP/1.0 200 OK\r\nContent-Length: 50\r\n\r\nblue\n"),
        Err("truncated body".to_string())
    );
    assert_eq!(
        parse_response(b"HTTP/1.0 503 Service Unavailable\r\n\r\n"),
        Err("status 503".to_string())
    );
    assert_eq!(parse_response(b""), Err("empty answer".to_string()));
    assert_eq!(
        parse_response(b"HTTP/1.0 200 OK\r\nContent-"),
        Err("truncated head".to_string())
    );

    // Nothing listens: every request fails, and the count bound holds.
    let mut config = LoadConfig::new(support::free_port(), "/id");
    config.max_requests = 50;
    config.rate = 1000.0;
    let report = Load::start(config).finish_when_done().await;
    assert_eq!(report.sent, 50, "{}", report.summary());
    assert_eq!(report.failed(), 50, "{}", report.summary());
    assert!(
        report.failures.keys().all(|k| k.starts_with("connect")),
        "{}",
        report.summary()
    );

    // The time bound holds too.
    let web = WebServer::start("blue");
    let mut config = LoadConfig::new(web.port, "/id");
    config.max_duration = Duration::from_millis(500);
    config.rate = 200.0;
    let started = std::time::Instant::now();
    let report = Load::start(config).finish_when_done().await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{}",
        report.summary()
    );
    assert_eq!(report.failed(), 0, "{}", report.summary());
    assert!(report.ok > 50, "{}", report.summary());
}
