//! The defaults tables against the code: the README's always, the
//! contract's (`../shared/spec/config.md`, outside this repository) when it
//! is there.

use std::collections::BTreeMap;

use super::documented;

/// Keys of the contract's table whose default is no constant of the file
/// ("number of CPU cores", "`true` on TLS servers", "Let's Encrypt
/// production") or belongs to a feature not built yet (see the open
/// issues); each such row is skipped.
const NOT_COMPARED: [&str; 4] = [
    "server http2",
    "acme.directory",
    "static.fallback",
    "global.threads",
];

/// The text between the first pair of backticks.
fn backticked(s: &str) -> Option<&str> {
    let start = s.find('`')? + 1;
    let len = s[start..].find('`')?;
    Some(&s[start..start + len])
}

/// A key piece: an optional prefix word (`route`, `server`) and the key.
fn key_piece(s: &str) -> Option<(Option<&str>, &str)> {
    let key = backticked(s)?;
    let word = s[..s.find('`')?].trim();
    Some(((!word.is_empty()).then_some(word), key))
}

/// The rows of the markdown table under `## Defaults` in `text`: each key
/// with its value (`None` where the table gives no literal value).
fn table(text: &str) -> BTreeMap<String, Option<String>> {
    let mut out = BTreeMap::new();
    let section = text.split("\n## Defaults").nth(1).unwrap_or("");
    for line in section.lines().skip_while(|l| !l.starts_with('|')) {
        let Some(row) = line.strip_prefix('|') else {
            break;
        };
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        if cells.len() < 2 || cells[0] == "key" || cells[0].starts_with("---") {
            continue;
        }
        let pieces: Vec<(Option<&str>, &str)> =
            cells[0].split(" / ").filter_map(key_piece).collect();
        let Some(&(first_word, first_key)) = pieces.first() else {
            continue;
        };
        let parent = first_key.rsplit_once('.').map(|(p, _)| p);
        let values: Vec<&str> = cells[1].split(" / ").collect();
        for (k, &(word, key)) in pieces.iter().enumerate() {
            let key = match (key.contains('.'), parent) {
                (false, Some(p)) => format!("{p}.{key}"),
                _ => key.to_string(),
            };
            let key = match word.or(first_word) {
                Some(w) => format!("{w} {key}"),
                None => key,
            };
            let value = match values.len() {
                n if n == pieces.len() => values[k],
                _ => values[0],
            };
            out.insert(key, backticked(value).map(str::to_string));
        }
    }
    out
}

fn code() -> BTreeMap<String, Option<String>> {
    documented()
        .into_iter()
        .map(|(k, v)| (k.to_string(), Some(v)))
        .collect()
}

#[test]
fn the_table_reader_reads_the_contracts_row_shapes() {
    let text = "intro\n## Defaults\n\n| key | default |\n| --- | --- |\n\
        | `global.threads` | number of CPU cores |\n\
        | `rate_limits.*.key` / `max_keys` | `\"client_ip\"` / `100000` |\n\
        | route `rate_limit.burst` / `status` | `0` / `429` |\n\
        | `upstreams.*.connect_timeout` / `read_timeout` | `\"60s\"` each (as nginx) |\n\
        | route `buffering` / server `buffer_size` | `true` / `\"1M\"` |\n\
        \nafter the table\n";
    let t = table(text);
    let get = |k: &str| {
        t.get(k)
            .cloned()
            .unwrap_or_else(|| panic!("{k} missing: {t:?}"))
    };
    assert_eq!(get("global.threads"), None);
    assert_eq!(get("rate_limits.*.max_keys").as_deref(), Some("100000"));
    assert_eq!(get("rate_limits.*.key").as_deref(), Some("\"client_ip\""));
    assert_eq!(get("route rate_limit.status").as_deref(), Some("429"));
    assert_eq!(get("upstreams.*.read_timeout").as_deref(), Some("\"60s\""));
    assert_eq!(get("server buffer_size").as_deref(), Some("\"1M\""));
    assert_eq!(t.len(), 9);
}

#[test]
fn the_readme_lists_exactly_the_codes_defaults() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    // Rows without a literal value ("Let's Encrypt production") are prose.
    let literal: BTreeMap<_, _> = table(&readme)
        .into_iter()
        .filter(|(_, v)| v.is_some())
        .collect();
    assert_eq!(literal, code());
}

#[test]
fn the_contract_agrees_with_the_code_where_it_lists_a_default() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/spec/config.md");
    let Ok(contract) = std::fs::read_to_string(path) else {
        // A clone of this repository alone (as CI's) has no contract next to
        // it; the README's table, checked above, is then the reference.
        eprintln!("{path} not found: contract defaults not compared");
        return;
    };
    let contract = table(&contract);
    assert!(
        contract.len() > 20,
        "the contract's table was not found: {contract:?}"
    );
    let code = code();
    for (key, value) in &contract {
        if NOT_COMPARED.contains(&key.as_str()) {
            continue;
        }
        assert_eq!(code.get(key), Some(value), "contract default of {key}");
    }
    for key in code.keys() {
        assert!(
            contract.contains_key(key),
            "{key} is not in the contract's table"
        );
    }
}
