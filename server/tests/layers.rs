//! The server's modules form layers, and imports only point down (or sideways
//! within a layer, without cycles):
//!
//! ```text
//! app, cli                                   wiring: builds everything, runs it
//! grpc, http                                 transports: thin, convert at the edge
//! auth, events, images, jobs, orchestrator,  services: the use cases
//!   perf, projects, retention
//! context, decide, vision                    engines: packet and budget, decisions, image facts
//! store                                      the only SQL
//! model, error, config, validate,            values and helpers that depend on nothing above
//!   pagination, telemetry, changes, text,
//!   redact, http_client
//! ```
//!
//! This test reads `server/src` and fails on an import from a higher layer, a
//! cycle inside a layer, or a top-level module that is in no layer. Test-only
//! code (after `#[cfg(test)]`) and comments are not counted.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

const LAYERS: &[&[&str]] = &[
    &["model", "error", "config", "validate", "pagination", "telemetry", "changes", "text", "redact", "http_client"],
    &["store"],
    &["context", "decide", "vision"],
    &["auth", "events", "images", "jobs", "orchestrator", "perf", "projects", "retention"],
    &["grpc", "http"],
    &["app", "startup", "cli"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read server/src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without comments and without what follows `#[cfg(test)]`.
fn production_code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    text.lines().map(|line| line.split("//").next().unwrap_or_default()).collect::<Vec<_>>().join("\n")
}

/// Top-level crate modules a piece of code names: `crate::x::...` and the first
/// segment of every item of a `use crate::{...}` group.
fn named_modules(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 1 => {
                        out.extend(first_segment(&item));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 {
                    break;
                }
                if depth == 1 {
                    item.push(c);
                }
            }
            out.extend(first_segment(&item));
        } else {
            out.extend(first_segment(rest));
        }
    }
    out
}

fn first_segment(path: &str) -> Option<String> {
    let name: String = path.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    (!name.is_empty()).then_some(name)
}

/// module -> modules it imports, over the whole crate.
fn import_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(src).expect("under src");
        let first = relative.components().next().expect("a component").as_os_str().to_string_lossy();
        let module = first.trim_end_matches(".rs").to_owned();
        if module == "lib" || module == "main" {
            continue;
        }
        let code = production_code(&std::fs::read_to_string(&file).expect("read source"));
        let imports: BTreeSet<String> = named_modules(&code).into_iter().filter(|m| *m != module).collect();
        graph.entry(module).or_default().extend(imports);
    }
    graph
}

/// Every rule the layering breaks, as readable lines.
fn violations(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut found = Vec::new();
    for (module, imports) in graph {
        let Some(own) = layer_of(module) else {
            found.push(format!("module `{module}` is in no layer: add it to LAYERS in server/tests/layers.rs"));
            continue;
        };
        for import in imports.iter().filter(|i| graph.contains_key(*i)) {
            match layer_of(import) {
                Some(theirs) if theirs > own => {
                    found.push(format!("`{module}` (layer {own}) imports `{import}` from the layer above ({theirs})"))
                }
                _ => {}
            }
        }
    }
    for layer in LAYERS {
        if let Some(cycle) = cycle_within(graph, layer) {
            found.push(format!("import cycle inside a layer: {}", cycle.join(" -> ")));
        }
    }
    found
}

/// A cycle among the modules of one layer, if any.
fn cycle_within(graph: &BTreeMap<String, BTreeSet<String>>, layer: &[&str]) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        layer: &[&str],
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut cycle = path[start..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten().filter(|n| layer.contains(&n.as_str())) {
            if let Some(cycle) = visit(next, graph, layer, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    layer.iter().find_map(|start| visit(start, graph, layer, &mut Vec::new(), &mut done))
}

#[test]
fn imports_only_point_down_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = import_graph(&src);
    assert!(graph.contains_key("store") && graph.contains_key("grpc"), "read the crate's modules");
    let found = violations(&graph);
    assert!(found.is_empty(), "layering broken:\n  {}", found.join("\n  "));
}

#[test]
fn the_check_sees_an_upward_import_and_a_cycle() {
    let graph = |edges: &[(&str, &str)]| {
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (from, to) in edges {
            g.entry((*from).into()).or_default().insert((*to).into());
            g.entry((*to).into()).or_default();
        }
        g
    };
    assert!(violations(&graph(&[("grpc", "store"), ("store", "model")])).is_empty());
    let upward = violations(&graph(&[("store", "events")]));
    assert_eq!(upward, ["`store` (layer 1) imports `events` from the layer above (3)"]);
    let cycle = violations(&graph(&[("images", "jobs"), ("jobs", "images")]));
    assert_eq!(cycle, ["import cycle inside a layer: images -> jobs -> images"]);
    assert_eq!(violations(&graph(&[("gadgets", "model")])).len(), 1, "an unknown module is reported");
    assert_eq!(
        named_modules("use crate::{\n    a::B,\n    c::{d, e::F},\n    g,\n};\nlet x = crate::h::I;"),
        ["a", "c", "g", "h"].into_iter().map(String::from).collect()
    );
    assert!(named_modules(&production_code("// crate::hidden\nfn f() {}\n#[cfg(test)]\nuse crate::tests;")).is_empty());
}
