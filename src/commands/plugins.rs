//! `fairlab plugins`: the registered plugins per kind, with a one-line description each.

use std::io::Write;

use fairlab_framework::Registry;

/// Print every plugin, grouped by kind.
pub fn list(registry: &Registry, out: &mut dyn Write) -> anyhow::Result<()> {
    let plugins = registry.list();
    let width = plugins.iter().map(|p| p.name.len()).max().unwrap_or(0);
    let mut current = None;
    for p in &plugins {
        if current != Some(p.kind) {
            if current.is_some() {
                writeln!(out)?;
            }
            writeln!(out, "{}s:", p.kind.as_str())?;
            current = Some(p.kind);
        }
        writeln!(out, "  {:width$}  {}", p.name, p.description)?;
    }
    Ok(())
}
