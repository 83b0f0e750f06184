//! Real S3-compatible servers for the storage tests: Garage, a production store (built once
//! with `cargo install` and kept under `$HOME/.cache` by version), as a single-node cluster on
//! loopback; and moto, a second implementation, for one small test.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{clients, run};

/// The Garage release the tests run, built without the features they do not use.
const GARAGE_VERSION: &str = "2.5.0";
/// The region Garage is configured with (`s3_region`), which requests must be signed for.
pub const GARAGE_REGION: &str = "garage";

/// A real S3-compatible server on loopback, stopped on drop.
#[derive(Debug)]
pub struct S3Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    key: (String, String),
    /// The region to sign for, when it is not `us-east-1`.
    region: Option<&'static str>,
    _dir: Option<tempfile::TempDir>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The Garage binary, built on first use (`cargo install --locked`) into
/// `$HOME/.cache/artifactd/garage-VERSION`. It is built for a test's loads, not a store's: at
/// opt-level 1, without LTO and in many codegen units, which takes a fraction of its release
/// profile's time on two cores.
fn garage_binary() -> PathBuf {
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    let cache = home.join(".cache/artifactd");
    let root = cache.join(format!("garage-{GARAGE_VERSION}"));
    let bin = root.join("bin/garage");
    if bin.exists() {
        return bin;
    }
    std::fs::create_dir_all(&cache).expect("cache folder");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(cache.join("garage-install.lock"))
        .expect("the garage lock file");
    lock.lock().expect("lock the garage lock file");
    if !bin.exists() {
        eprintln!(
            "building Garage {GARAGE_VERSION} (once; kept in {})",
            root.display()
        );
        run(Command::new("cargo")
            .args(["install", "--locked", "garage", "--version", GARAGE_VERSION])
            .args(["--no-default-features", "--features", "lmdb,bundled-libs"])
            .arg("--root")
            .arg(&root)
            .env("CARGO_TARGET_DIR", cache.join("garage-build"))
            .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "1")
            .env("CARGO_PROFILE_RELEASE_LTO", "off")
            .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "16")
            .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
            .env("CARGO_PROFILE_RELEASE_INCREMENTAL", "false"));
    }
    bin
}

impl S3Server {
    /// Starts a Garage node with its single-node layout, a key that may create buckets, and
    /// the region [`GARAGE_REGION`].
    pub fn start() -> Self {
        let bin = garage_binary();
        let dir = tempfile::Builder::new()
            .prefix("artifactd-garage-")
            .tempdir()
            .expect("garage folder");
        let (rpc, s3, admin) = (free_port(), free_port(), free_port());
        let conf = dir.path().join("garage.toml");
        let secret: String = (0..32)
            .map(|i| format!("{:02x}", (i * 37 + rpc as usize) % 256))
            .collect();
        std::fs::write(
            &conf,
            format!(
                "metadata_dir = \"{d}/meta\"\ndata_dir = \"{d}/data\"\ndb_engine = \"lmdb\"\nreplication_factor = 1\nrpc_bind_addr = \"127.0.0.1:{rpc}\"\nrpc_public_addr = \"127.0.0.1:{rpc}\"\nrpc_secret = \"{secret}\"\n\n[s3_api]\ns3_region = \"{GARAGE_REGION}\"\napi_bind_addr = \"127.0.0.1:{s3}\"\nroot_domain = \".s3.garage.localhost\"\n\n[admin]\napi_bind_addr = \"127.0.0.1:{admin}\"\n",
                d = dir.path().display()
            ),
        )
        .expect("garage.toml");
        let log = std::fs::File::create(dir.path().join("garage.log")).expect("garage log");
        let child = Command::new(&bin)
            .arg("-c")
            .arg(&conf)
            .arg("server")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start garage");
        let cli = |args: &[&str]| -> (bool, String) {
            let out = Command::new(&bin)
                .arg("-c")
                .arg(&conf)
                .args(args)
                .output()
                .expect("garage cli");
            (
                out.status.success(),
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
            )
        };
        // `node id` reads the node's key from disk; the layout commands need the server's RPC
        // port, so both must answer.
        let mut node = None;
        for _ in 0..200 {
            let listening = std::net::TcpStream::connect(("127.0.0.1", rpc)).is_ok();
            let (ok, out) = cli(&["node", "id", "-q"]);
            if ok && listening {
                node = out.trim().split('@').next().map(str::to_owned);
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let node = node.unwrap_or_else(|| {
            panic!(
                "garage did not start: {}",
                std::fs::read_to_string(dir.path().join("garage.log")).unwrap_or_default()
            )
        });
        // A command right after the start may still find the node connecting: a few tries.
        let must = |args: &[&str]| {
            let mut last = String::new();
            for _ in 0..20 {
                let (ok, out) = cli(args);
                if ok {
                    return out;
                }
                last = out;
                std::thread::sleep(Duration::from_millis(250));
            }
            panic!("garage {args:?}: {last}");
        };
        must(&["layout", "assign", "-z", "dc1", "-c", "1G", &node]);
        must(&["layout", "apply", "--version", "1"]);
        let key_id = format!("GK{}", &secret[..24]);
        let key_secret = secret.chars().rev().collect::<String>();
        must(&[
            "key",
            "import",
            "--yes",
            "-n",
            "artifactd",
            &key_id,
            &key_secret,
        ]);
        must(&["key", "allow", "--create-bucket", &key_id]);
        let endpoint = format!("http://127.0.0.1:{s3}");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", s3)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            endpoint,
            key: (key_id, key_secret),
            region: Some(GARAGE_REGION),
            _dir: Some(dir),
        }
    }

    /// Starts moto, a second S3 implementation (a mock of AWS, from the clients' venv).
    pub fn moto() -> Self {
        let c = clients();
        let mut child = Command::new(c.venv.join("bin/moto_server"))
            .args(["-H", "127.0.0.1", "-p", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start moto_server");
        let mut reader = BufReader::new(child.stderr.take().expect("stderr"));
        let mut endpoint = None;
        for _ in 0..20 {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            if let Some(at) = line.find("Running on http://") {
                endpoint = Some(line[at + "Running on ".len()..].trim().to_owned());
                break;
            }
        }
        let endpoint = endpoint.expect("moto_server did not say where it listens");
        // Keep draining its log so it never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while reader.read_line(&mut sink).unwrap_or(0) > 0 {
                sink.clear();
            }
        });
        Self {
            child,
            endpoint,
            key: ("testkey".into(), "testsecret".into()),
            region: None,
            _dir: None,
        }
    }

    /// An `S3_URL` for `bucket` on this server, with its credentials and region.
    pub fn url(&self, bucket: &str) -> String {
        let mut url = self.url_without_region(bucket);
        if let Some(r) = self.region {
            url.push_str(&format!("?region={r}"));
        }
        url
    }

    /// [`S3Server::url`] without `?region=`: what a new user writes first.
    pub fn url_without_region(&self, bucket: &str) -> String {
        self.endpoint.replacen(
            "http://",
            &format!("http://{}:{}@", self.key.0, self.key.1),
            1,
        ) + "/"
            + bucket
    }
}

impl S3Server {
    /// Runs `script` with boto3 (from the clients' venv) and `s3`, a client of this server.
    fn boto3(&self, script: &str, args: &[&str]) -> (bool, String) {
        let c = clients();
        let prelude = format!(
            "import sys, boto3\ns3 = boto3.client('s3', endpoint_url='{}', aws_access_key_id='{}', aws_secret_access_key='{}', region_name='{}')\n",
            self.endpoint,
            self.key.0,
            self.key.1,
            self.region.unwrap_or("us-east-1")
        );
        let out = Command::new(c.venv.join("bin/python"))
            .arg("-c")
            .arg(prelude + script)
            .args(args)
            .output()
            .expect("python");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    /// Stores `body` as `key` in `bucket`, signed, as another program would.
    pub fn put_object(&self, bucket: &str, key: &str, body: &[u8]) {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), body).expect("body");
        let (ok, out) = self.boto3(
            "s3.put_object(Bucket=sys.argv[1], Key=sys.argv[2], Body=open(sys.argv[3], 'rb').read())",
            &[bucket, key, &file.path().display().to_string()],
        );
        assert!(ok, "put {bucket}/{key}: {out}");
    }

    /// Whether `bucket` holds `key`.
    pub fn has_object(&self, bucket: &str, key: &str) -> bool {
        let (ok, out) = self.boto3(
            "import botocore\ntry:\n    s3.head_object(Bucket=sys.argv[1], Key=sys.argv[2]); print('yes')\nexcept botocore.exceptions.ClientError as e:\n    print('no' if e.response['Error']['Code'] in ('404', 'NoSuchKey') else e)",
            &[bucket, key],
        );
        assert!(ok && (out.trim() == "yes" || out.trim() == "no"), "{out}");
        out.trim() == "yes"
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
