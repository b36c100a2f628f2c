//! `csv-images` on the real NIH1000 folder and on broken copies of it.

use std::path::{Path, PathBuf};

use fairlab_datasets::csv_images::{CsvImages, CsvImagesConfig};
use fairlab_framework::{Dataset, Split};

fn nih1000() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/nih1000")
}

fn config(root: &Path, attributes: &[&str]) -> CsvImagesConfig {
    serde_norway::from_str(&format!(
        "{{root: '{}', target_name: abnormal, attributes: [{}]}}",
        root.display(),
        attributes.join(", ")
    ))
    .unwrap()
}

/// A copy of the first `rows` rows of NIH1000 with `edit` applied to labels.csv.
fn broken_copy(rows: usize, edit: impl Fn(String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let csv = std::fs::read_to_string(nih1000().join("labels.csv")).unwrap();
    let head: Vec<&str> = csv.lines().take(rows + 1).collect();
    std::fs::create_dir(dir.path().join("images")).unwrap();
    for line in &head[1..] {
        let file = line.split(',').next().unwrap();
        std::fs::copy(
            nih1000().join("images").join(file),
            dir.path().join("images").join(file),
        )
        .unwrap();
    }
    std::fs::write(dir.path().join("labels.csv"), edit(head.join("\n") + "\n")).unwrap();
    dir
}

fn open_err(cfg: CsvImagesConfig) -> String {
    format!("{:#}", CsvImages::open(cfg).unwrap_err())
}

#[test]
fn reads_nih1000_with_its_patient_level_split() {
    let ds = CsvImages::open(config(&nih1000(), &["sex", "age_group"])).unwrap();
    assert_eq!(ds.samples().len(), 1000);
    assert_eq!(ds.split(Split::Train).len(), 704);
    assert_eq!(ds.split(Split::Val).len(), 148);
    assert_eq!(ds.split(Split::Test).len(), 148);
    assert_eq!(ds.attribute_names(), ["sex", "age_group"]);
    assert_eq!(ds.target_name(), "abnormal");
    let first = &ds.samples()[0];
    assert_eq!(
        (first.id.as_str(), first.label, first.attributes.clone()),
        ("00000001_000.png", 1, vec!["M".into(), "40-59".into()])
    );
    let img = ds.load_image(first).unwrap();
    assert_eq!((img.width(), img.height()), (64, 64));
    assert_eq!(ds.fingerprint().len(), 64);
    let again = CsvImages::open(config(&nih1000(), &["sex", "age_group"])).unwrap();
    assert_eq!(again.fingerprint(), ds.fingerprint());
}

#[test]
fn fingerprint_changes_with_the_data() {
    let a = broken_copy(5, |s| s);
    let b = broken_copy(5, |s| s.replacen(",train", ",val", 1));
    let fa = CsvImages::open(config(a.path(), &["sex"]))
        .unwrap()
        .fingerprint()
        .to_string();
    let fb = CsvImages::open(config(b.path(), &["sex"]))
        .unwrap()
        .fingerprint()
        .to_string();
    assert_ne!(fa, fb);
}

#[test]
fn missing_folder_is_a_clear_error() {
    let err = open_err(config(Path::new("no/such/folder"), &["sex"]));
    assert!(err.contains("dataset folder no/such/folder does not exist"), "{err}");
}

#[test]
fn unknown_column_lists_the_columns() {
    let err = CsvImages::open(config(&nih1000(), &["gender"])).unwrap_err();
    let cfg_err = err
        .downcast_ref::<fairlab_framework::ConfigError>()
        .expect("a config error");
    assert_eq!(cfg_err.key.as_deref(), Some("dataset.attributes"));
    assert!(
        cfg_err.message.contains("column `gender` is not in") && cfg_err.message.contains("sex, age, age_group"),
        "{cfg_err}"
    );
}

#[test]
fn bad_rows_name_the_row_and_column() {
    let dir = broken_copy(3, |s| s.replacen(",1,Cardiomegaly,", ",2,Cardiomegaly,", 1));
    let err = open_err(config(dir.path(), &["sex"]));
    assert!(
        err.contains("labels.csv: row 2, column `label`: the target must be 0 or 1, got `2`"),
        "{err}"
    );
    let dir = broken_copy(3, |s| s.replacen(",train", ",training", 1));
    let err = open_err(config(dir.path(), &["sex"]));
    assert!(
        err.contains("row 2, column `split`: the split must be train, val or test"),
        "{err}"
    );
}

#[test]
fn missing_and_unreadable_images_are_named() {
    let dir = broken_copy(3, |s| s);
    std::fs::remove_file(dir.path().join("images/00000001_001.png")).unwrap();
    let err = open_err(config(dir.path(), &["sex"]));
    assert!(
        err.contains("row 3, column `file`: cannot read image") && err.contains("00000001_001.png"),
        "{err}"
    );

    let dir = broken_copy(3, |s| s);
    std::fs::write(dir.path().join("images/00000001_000.png"), b"not a png").unwrap();
    let ds = CsvImages::open(config(dir.path(), &["sex"])).unwrap();
    let err = format!("{:#}", ds.load_image(&ds.samples()[0]).unwrap_err());
    assert!(
        err.contains("cannot decode image") && err.contains("00000001_000.png"),
        "{err}"
    );
}
