//! Property tests (bounded fuzzing) of config parsing and validation: any text, and a good config
//! with any one value replaced by a hostile one, either validates or is refused with errors that
//! name a key and never show a secret; nothing panics. `PROPTEST_CASES` sets the case count.

use super::*;
use proptest::prelude::*;

const SECRET: &str = "hunter2-prop-secret";

/// Parse and validate TOML text as the daemon does a file (without the environment layer).
fn parse(text: &str) -> Result<Config, ConfigErrors> {
    let figment = Figment::from(Serialized::defaults(RawConfig::default())).merge(Toml::string(text));
    let raw = figment.extract::<RawConfig>().map_err(figment_errors)?;
    validate(&raw)
}

/// `hide_secret`: the secret sits only where secrets go (a token, a header, a URL's user-info);
/// a token pasted into, say, `interval` is that key's bad value and is shown as such.
fn assert_refusal_is_clear(text: &str, errors: &ConfigErrors, hide_secret: bool) -> Result<(), TestCaseError> {
    prop_assert!(!errors.0.is_empty(), "refused without a reason:\n{}", text);
    for e in &errors.0 {
        prop_assert!(!e.key.is_empty() && !e.message.is_empty(), "{:?}", e);
        if hide_secret {
            prop_assert!(!e.message.contains(SECRET) && !e.key.contains(SECRET), "secret in {:?}", e);
        }
    }
    Ok(())
}

/// Keys whose values are secrets, or URLs whose user-info is.
const SECRET_KEYS: &[&str] = &["bearer_token", "url", "redis"];

/// A config the daemon accepts, with `{slot}` where one value goes.
fn base(slot_key: &str, value: &str) -> String {
    let mut fields = vec![
        ("name", "\"edge\"".to_string()),
        ("url", "\"http://127.0.0.1:8080/mcp\"".to_string()),
        ("bearer_token", format!("\"{SECRET}\"")),
        ("interval", "\"30s\"".to_string()),
        ("timeout", "\"5s\"".to_string()),
        ("jitter", "0.1".to_string()),
        ("session", "\"persistent\"".to_string()),
    ];
    match fields.iter_mut().find(|(k, _)| *k == slot_key) {
        Some(field) => field.1 = value.to_string(),
        None => fields.push((Box::leak(slot_key.to_string().into_boxed_str()), value.to_string())),
    }
    let mut text = String::from("[server]\nlisten = \"127.0.0.1:0\"\nshutdown_grace = \"5s\"\n\n[[targets]]\n");
    for (k, v) in fields {
        text.push_str(&format!("{k} = {v}\n"));
    }
    text.push_str(&format!("headers = {{ X-Api-Key = \"{SECRET}\" }}\n"));
    text
}

fn hostile_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("\"\"".to_string()),
        Just("\"1000000000y\"".to_string()),
        Just("\"18446744073709551615s\"".to_string()),
        Just("\"0s\"".to_string()),
        Just("-1".to_string()),
        Just("1e308".to_string()),
        Just("nan".to_string()),
        Just("inf".to_string()),
        Just("[]".to_string()),
        Just("{}".to_string()),
        Just("true".to_string()),
        Just(format!("\"{SECRET}\"")),
        Just(format!("\"http://user:{SECRET}@127.0.0.1:1/mcp\"")),
        Just(format!("\"{}\"", "a".repeat(5000))),
        Just("\"\\u001b]0;pwned\\u0007\"".to_string()),
        (0u64..u64::MAX, prop_oneof![Just("ms"), Just("s"), Just("m"), Just("h"), Just("d"), Just("w"), Just("y")])
            .prop_map(|(n, unit)| format!("\"{n}{unit}\"")),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| format!("{f:?}")),
        "[ -~&&[^\"\\\\]]{0,40}".prop_map(|s| format!("\"{s}\"")),
    ]
}

fn target_key() -> impl Strategy<Value = &'static str> {
    proptest::sample::select(vec![
        "name",
        "url",
        "bearer_token",
        "interval",
        "timeout",
        "jitter",
        "session",
        "protocol",
        "transport",
        "tool",
        "redis",
        "redis_interval",
        "max_response_bytes",
        "notification",
        "instances",
        "allow_chaos",
        "bogus_key",
    ])
}

proptest! {
    #[test]
    fn any_text_is_accepted_or_refused_clearly(text in any::<String>()) {
        if let Err(errors) = parse(&text) {
            prop_assert!(errors.0.iter().all(|e| !e.key.is_empty()), "{:?}", errors);
        }
    }

    #[test]
    fn one_hostile_value_is_accepted_or_refused_naming_its_key(key in target_key(), value in hostile_value()) {
        let text = base(key, &value);
        match parse(&text) {
            Ok(config) => {
                let t = &config.targets[0];
                prop_assert!(t.interval <= validate::MAX_INTERVAL && t.interval >= std::time::Duration::from_secs(1));
                prop_assert!(t.timeout <= t.interval.max(std::time::Duration::from_secs(60)));
            }
            Err(errors) => {
                let hide_secret = !value.contains(SECRET) || SECRET_KEYS.contains(&key);
                assert_refusal_is_clear(&text, &errors, hide_secret)?;
                prop_assert!(
                    errors.0.iter().any(|e| e.key.contains(key) || e.key == "<root>" || e.key.starts_with("targets")),
                    "no error names {}: {:?}", key, errors
                );
            }
        }
    }

    #[test]
    fn the_good_config_survives_any_byte_flip(at in any::<usize>(), byte in any::<u8>()) {
        let mut text = base("interval", "\"30s\"").into_bytes();
        let at = at % text.len();
        text[at] = byte;
        if let Ok(text) = String::from_utf8(text)
            && let Err(errors) = parse(&text)
        {
            prop_assert!(errors.0.iter().all(|e| !e.key.is_empty()), "{:?}", errors);
        }
    }
}

#[test]
fn the_base_config_is_good() {
    parse(&base("interval", "\"30s\"")).expect("the base of the properties validates");
}
