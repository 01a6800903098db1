//! Resolving and loading models, with a progress bar on a terminal.

use std::io::IsTerminal;
use std::sync::Arc;

use anyhow::Context;
use pae_local::model::{LoadOptions, LoadProgress, Model};
use pae_local::source;

use super::args::ModelArgs;

/// Resolves `spec` (or the default model) and loads it.
pub fn load_model(args: &ModelArgs, spec: Option<&str>) -> anyhow::Result<Arc<Model>> {
    let path = source::resolve(spec.or(args.model.as_deref()))?;
    let device = args.device.open()?;
    let bar = (!args.quiet && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_message(format!(
            "loading {}",
            path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default()
        ));
        bar
    });
    let mut on_progress = |p: LoadProgress| {
        if let Some(b) = &bar {
            b.set_length(p.total_bytes);
            b.set_position(p.loaded_bytes);
        }
    };
    let model = Model::load(
        &path,
        LoadOptions {
            device,
            context: args.ctx,
            progress: Some(&mut on_progress),
        },
    )
    .with_context(|| format!("loading `{}`", path.display()))?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(Arc::new(model))
}
