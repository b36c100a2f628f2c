//! fairlab's built-in datasets: `csv-images`, a folder with a `labels.csv` and an `images/` folder.

pub mod csv_images;

use fairlab_framework::Registry;

/// Register the built-in datasets.
pub fn register(registry: &mut Registry) {
    registry.register_dataset(
        "csv-images",
        "image folder + labels.csv with a binary target, sensitive attributes and a split column",
        Box::new(|spec| Ok(Box::new(csv_images::CsvImages::open(spec.parse()?)?))),
    );
}
