//! The server's side of trained dictionaries: the `velo-dict-*` parameters (docs/compat.md) applied to
//! the engine's family rules and sampler settings, and the background trainer started when training is on.
//! Sampling and training themselves live in `engine::train`; nothing here runs per request.

use std::sync::atomic::Ordering;

use crate::config::params::Values;
use crate::engine::family::FamilyRules;
use crate::engine::Engine;

/// Applies the `velo-dict-*` parameters (at start-up and after CONFIG SET).
pub fn apply(engine: &Engine, params: &Values) {
    let map = engine.dictionaries();
    let rules = FamilyRules {
        separators: params.get("velo-dict-separators").unwrap_or(":").as_bytes().to_vec(),
        prefixes: FamilyRules::parse_prefixes(params.get("velo-dict-prefixes").unwrap_or("")),
    };
    if map.rules() != rules {
        map.set_rules(rules);
    }
    let settings = &map.sampler().settings;
    settings.min_samples.store(params.uint("velo-dict-min-samples"), Ordering::Relaxed);
    settings.dict_size.store(params.uint("velo-dict-size"), Ordering::Relaxed);
    settings.min_gain_pct.store(params.int("velo-dict-min-gain"), Ordering::Relaxed);
    settings.retrain_secs.store(params.uint("velo-dict-retrain-seconds"), Ordering::Relaxed);
    let training = params.flag("velo-dict-training");
    settings.enabled.store(training, Ordering::Relaxed);
    if training {
        engine.start_dictionary_training();
    }
}

/// The dictionary lines of INFO's `velo` section: totals, then one `dict_family<N>` line per key family
/// (largest raw bytes first; the fields are VELO FAMILIES's, docs/commands.md).
pub fn info(engine: &Engine, out: &mut String) {
    use std::fmt::Write;
    let map = engine.dictionaries();
    let stats = &map.sampler().stats;
    let ratio = |part: u64, whole: u64| {
        if whole == 0 {
            "-".to_string()
        } else {
            format!("{:.3}", part as f64 / whole as f64)
        }
    };
    let families = map.families();
    let _ = write!(
        out,
        "dict_training:{}\r\ndictionaries:{}\r\ndictionaries_retired:{}\r\ndict_trained:{}\r\ndict_rejected:{}\r\ndict_failed:{}\r\ndict_families:{}\r\n",
        if map.sampler().enabled() { "yes" } else { "no" },
        map.list().len(),
        map.retired().len(),
        stats.installed.load(Ordering::Relaxed),
        stats.rejected.load(Ordering::Relaxed),
        stats.failed.load(Ordering::Relaxed),
        families.len(),
    );
    for (n, f) in families.iter().enumerate() {
        // INFO lines are `field:value,...`: characters of the family name that would break that are shown as `_`.
        let name: String = crate::engine::family::display_family(&f.family)
            .chars()
            .map(|c| if matches!(c, ',' | '=' | ':' | '\r' | '\n') { '_' } else { c })
            .collect();
        let eval = f.evaluation.as_ref();
        let _ = write!(
            out,
            "dict_family{n}:name={name},writes={},raw_bytes={},stored_bytes={},ratio={},dictionary_writes={},samples={},dictionary={},dictionary_bytes={},retired={},ratio_without_dictionary={},ratio_with_dictionary={}\r\n",
            f.writes,
            f.raw_bytes,
            f.stored_bytes,
            ratio(f.stored_bytes, f.raw_bytes),
            f.dict_writes,
            f.samples,
            f.dictionary.unwrap_or(0),
            f.dictionary_bytes,
            f.retired.len(),
            eval.map_or("-".into(), |e| ratio(e.without_dict_bytes, e.raw_bytes)),
            eval.filter(|e| e.with_dict_bytes > 0).map_or("-".into(), |e| ratio(e.with_dict_bytes, e.raw_bytes)),
        );
    }
}
