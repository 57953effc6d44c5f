//! The peer adapters (`--peer`) against real brokers: mosquitto at QoS 0
//! and 1, and nats-server, each started on a free loopback port with a
//! config written here. A broker that is not installed skips its test with
//! a printed reason, except under CI (`CI` set), where it fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tern_bench::cli::{DirectArgs, FanoutArgs};
use tern_bench::{run_scenario, Common, Peer, Scenario};

/// A broker process, killed when dropped.
struct Broker {
    child: Child,
    addr: String,
    dir: tempfile::TempDir,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `name` on the PATH or in the sbin directories (Debian installs both
/// brokers in /usr/sbin); `None` (and why) if missing, a panic under CI.
fn installed(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path).chain(["/usr/sbin".into(), "/usr/local/sbin".into()]);
    let found = dirs.map(|d: PathBuf| d.join(name)).find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{name} is not installed; CI must install it (apt-get install mosquitto nats-server)"
        );
        println!("skipped: {name} is not installed (apt-get install mosquitto nats-server)");
    }
    found
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Starts `bin -c <dir>/<conf_name>` with `conf(port)` as its config and
/// waits until it accepts connections.
fn start(bin: &Path, conf_name: &str, conf: impl Fn(u16) -> String) -> Broker {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let conf_path = dir.path().join(conf_name);
    std::fs::write(&conf_path, conf(port)).unwrap();
    let log = std::fs::File::create(dir.path().join("broker.log")).unwrap();
    let child = Command::new(bin)
        .arg("-c")
        .arg(&conf_path)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{port}");
    let mut broker = Broker { child, addr, dir };
    let until = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&broker.addr).is_err() {
        let log = std::fs::read_to_string(broker.dir.path().join("broker.log")).unwrap();
        assert!(
            broker.child.try_wait().unwrap().is_none(),
            "{bin:?} exited: {log}"
        );
        assert!(Instant::now() < until, "{bin:?} did not listen: {log}");
        std::thread::sleep(Duration::from_millis(50));
    }
    broker
}

fn common(peer: Peer, broker: &Broker) -> Common {
    let mut c = Common::new("127.0.0.1:9", "");
    c.peer = Some(peer);
    c.peer_host = Some(broker.addr.clone());
    c.server_pid = Some(broker.child.id());
    c.timeout = 10;
    c
}

/// A one-second `direct` with 2 pairs and a small `fanout`: everything
/// sent is delivered, with latencies and the broker's CPU time.
async fn loads(peer: Peer, broker: &Broker) {
    let c = common(peer, broker);
    let direct = Scenario::Direct(DirectArgs {
        pairs: 2,
        window: 4,
        duration: 1,
        grace: 5,
        body_bytes: 64,
    });
    let r = run_scenario(&c, &direct).await.unwrap();
    println!("{}", r.json_line());
    assert!(r.counter("delivered") > 0, "{}", r.table());
    assert_eq!(r.counter("delivered"), r.counter("acked"), "{}", r.table());
    assert_eq!(r.counter("lost"), 0, "{}", r.table());
    assert!(r.errors.is_empty(), "{}", r.table());
    assert_eq!(r.latencies["delivery"].len(), r.counter("delivered"));
    assert_eq!(r.latencies.contains_key("ack"), peer == Peer::Mqtt1);
    assert!(
        r.gauges.contains_key("server_cpu_us_per_msg"),
        "{}",
        r.table()
    );
    assert_eq!(r.params["peer"], peer.name());

    let fanout = Scenario::Fanout(FanoutArgs {
        members: 5,
        messages: 40,
        senders: 1,
        rate: 0.0,
        window: 8,
        grace: 5,
    });
    let r = run_scenario(&c, &fanout).await.unwrap();
    println!("{}", r.json_line());
    assert_eq!(r.counter("members_connected"), 5, "{}", r.table());
    assert_eq!(r.counter("acked"), 40, "{}", r.table());
    assert_eq!(r.counter("delivered"), 200, "{}", r.table());
    assert!(r.rates["deliveries"] > 0.0, "{}", r.table());
    assert!(r.errors.is_empty(), "{}", r.table());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_at_qos_0_and_1() {
    let Some(bin) = installed("mosquitto") else {
        return;
    };
    let broker = start(&bin, "mosquitto.conf", |port| {
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nset_tcp_nodelay true\n\
             log_dest stderr\nlog_type error\nlog_type warning\n"
        )
    });
    loads(Peer::Mqtt0, &broker).await;
    loads(Peer::Mqtt1, &broker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_server() {
    let Some(bin) = installed("nats-server") else {
        return;
    };
    let broker = start(&bin, "nats.conf", |port| {
        format!("listen: \"127.0.0.1:{port}\"\n")
    });
    loads(Peer::Nats, &broker).await;
}
