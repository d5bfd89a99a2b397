//! The module map holds: dependencies between top-level modules of `src/`
//! point one way, down the layers of DESIGN.md, and form no cycle.
//!
//! Production code only: a file's inline `#[cfg(test)] mod tests` and the
//! test-only files (`tests.rs`, `fakes.rs`, `*_tests.rs`, and whatever is
//! under a module's `tests/`, `fake/` or `fakes/` folder) may reach across
//! layers to build their fixtures. `make lint` runs this test.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Layers, lowest first. A module may import modules of its own layer (as
/// long as there is no cycle) or of a layer below, never above.
const LAYERS: &[(&str, &[&str])] = &[
    ("base", &["config", "crash"]),
    (
        "systems",
        &["metrics", "postgres", "runtime", "journal", "notify"],
    ),
    ("decisions", &["judge", "levers"]),
    ("actions", &["tune", "deploy", "watch", "resources", "gate"]),
    ("edge", &["commands", "cli", "exit", "output"]),
];

type Graph = BTreeMap<String, BTreeSet<String>>;

fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Test-only by the project's naming: `tests.rs`, `fakes.rs`, `*_tests.rs`,
/// or anything under a `tests/`, `fake/` or `fakes/` folder of a module.
/// `path` is relative to `src/`, so where the checkout lives cannot matter.
fn is_test_only(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let in_test_folder = path
        .parent()
        .into_iter()
        .flat_map(|p| p.components())
        .any(|c| matches!(c.as_os_str().to_str(), Some("tests" | "fake" | "fakes")));
    name == "tests.rs" || name == "fakes.rs" || name.ends_with("_tests.rs") || in_test_folder
}

/// The text of a file up to its test module, without line comments.
fn production_code(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed == "#[cfg(test)]"
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().contains("mod tests"))
        {
            break;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        let code = line.split(" //").next().unwrap_or(line);
        out.push_str(code);
        out.push('\n');
    }
    out
}

/// `crate::<name>` references in `code`.
fn referenced(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            found.insert(name);
        }
        rest = after;
    }
    found
}

/// The top-level module a file of `src/` belongs to.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).ok()?;
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib" && name != "main").then(|| name.to_string())
}

fn graph(src: &Path) -> Graph {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut graph = Graph::new();
    for file in files {
        let Some(module) = module_of(src, &file) else {
            continue;
        };
        let entry = graph.entry(module.clone()).or_default();
        if is_test_only(file.strip_prefix(src).unwrap_or(&file)) {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("read a source file");
        for dep in referenced(&production_code(&text)) {
            if dep != module {
                entry.insert(dep);
            }
        }
    }
    graph
}

/// One cycle, as the path that closes it, if there is any.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut cycle = path[start..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for dep in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(dep, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(cycle) = visit(node, graph, &mut Vec::new(), &mut done) {
            return Some(cycle);
        }
    }
    None
}

/// Every import that goes up a layer, and every module not in a layer.
fn violations(graph: &Graph) -> Vec<String> {
    let mut problems = Vec::new();
    for (module, deps) in graph {
        let Some(own) = layer_of(module) else {
            problems.push(format!(
                "src/{module} is in no layer: add it to LAYERS here and to DESIGN.md's map"
            ));
            continue;
        };
        for dep in deps {
            match layer_of(dep) {
                Some(layer) if layer > own => problems.push(format!(
                    "{module} ({}) imports {dep} ({}), a layer above it",
                    LAYERS[own].0, LAYERS[layer].0
                )),
                _ => {}
            }
        }
    }
    problems
}

fn edges(list: &[(&str, &[&str])]) -> Graph {
    list.iter()
        .map(|(m, deps)| (m.to_string(), deps.iter().map(|d| d.to_string()).collect()))
        .collect()
}

#[test]
fn modules_depend_one_way_down_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = graph(&src);
    assert!(graph.contains_key("tune") && graph.contains_key("config"));
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "modules import each other in a cycle: {}",
            cycle.join(" -> ")
        );
    }
    let problems = violations(&graph);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_check_catches_a_cycle_and_an_upward_import() {
    let cyclic = edges(&[
        ("config", &[]),
        ("tune", &["levers", "config"]),
        ("levers", &["tune"]),
    ]);
    assert_eq!(
        find_cycle(&cyclic),
        Some(vec!["levers".into(), "tune".into(), "levers".into()])
    );
    let upward = edges(&[("postgres", &["tune"]), ("tune", &[])]);
    assert_eq!(find_cycle(&upward), None);
    let problems = violations(&upward);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("postgres (systems) imports tune (actions)"));
}

#[test]
fn test_only_files_are_known_by_their_place_under_src() {
    assert!(is_test_only(Path::new("tune/tests/cycle.rs")));
    assert!(is_test_only(Path::new("runtime/fake/world.rs")));
    assert!(is_test_only(Path::new("deploy/swap_tests.rs")));
    assert!(!is_test_only(Path::new("tune/cycle.rs")));
    assert!(!is_test_only(Path::new("deploy/plan.rs")));
}

#[test]
fn test_modules_and_comments_do_not_count() {
    let text = "use crate::config::Config;\n// see crate::tune\n#[cfg(test)]\nmod tests {\n    use crate::tune::fakes;\n}\n";
    assert_eq!(
        referenced(&production_code(text)),
        BTreeSet::from(["config".to_string()])
    );
}
