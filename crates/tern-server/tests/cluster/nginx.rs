//! nginx from Debian's package in front of the test nodes, configured with
//! the `upstream`/`server` blocks of docs/cluster.md (the node addresses
//! and the listen port substituted), so the documented configuration is
//! the one that is tested. Runs in the foreground from a temporary prefix.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, wait_status};

const NGINX: &str = "/usr/sbin/nginx";

pub struct Nginx {
    pub addr: SocketAddr,
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The doc's nginx snippet for `nodes`, listening on `listen`.
pub fn config_from_doc(nodes: &[SocketAddr], listen: SocketAddr) -> String {
    let doc = include_str!("../../../../docs/cluster.md");
    let snippet = doc
        .split("```nginx\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/cluster.md has an nginx block");
    let mut servers = nodes.iter();
    let mut conf = String::new();
    let mut doc_servers = 0;
    for line in snippet.lines() {
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix("server 10.0.0.") {
            // `server 10.0.0.11:8080 max_fails=…;`: the address replaced,
            // the parameters kept as documented.
            doc_servers += 1;
            let params = rest.split_once(' ').map_or(";", |(_, p)| p);
            if let Some(addr) = servers.next() {
                conf.push_str(&format!("    server {addr} {params}\n"));
            }
        } else if t.starts_with("listen ") {
            conf.push_str(&format!("    listen {listen};\n"));
        } else {
            conf.push_str(line);
            conf.push('\n');
        }
    }
    assert_eq!(doc_servers, nodes.len(), "the doc shows one server per node");
    conf
}

impl Nginx {
    /// nginx in front of `nodes`, or `None` (skip, reason printed) when it
    /// is not installed; with env CI set its absence fails the test.
    pub async fn start(nodes: &[SocketAddr]) -> Option<Self> {
        if !Path::new(NGINX).exists() {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but {NGINX} is missing (apt-get install -y nginx-light)"
            );
            eprintln!("nginx part skipped: {NGINX} is not installed (apt-get install nginx-light)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let p = dir.path().display();
        let full = format!(
            "pid {p}/nginx.pid;\nerror_log {p}/error.log warn;\nworker_processes 1;\n\
             events {{ worker_connections 512; }}\n\
             http {{\n access_log {p}/access.log;\n client_body_temp_path {p}/body;\n\
             proxy_temp_path {p}/proxy;\n fastcgi_temp_path {p}/fcgi;\n\
             uwsgi_temp_path {p}/uwsgi;\n scgi_temp_path {p}/scgi;\n{}}}\n",
            config_from_doc(nodes, addr)
        );
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, full).unwrap();
        let child = Command::new(NGINX)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            // One process: no worker switching to an unprivileged user that could
            // not write to the temporary prefix when the tests run as root.
            .args(["-g", "daemon off; master_process off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let nginx = Self { addr, child, dir };
        wait_status(addr, "/readyz", 200, Duration::from_secs(10)).await;
        Some(nginx)
    }

    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// nginx's error log so far (for assertion messages).
    pub fn errors(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}
