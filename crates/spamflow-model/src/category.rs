//! The spam categories the category head tells apart.

use serde::{Deserialize, Serialize};

/// What a spam message is mainly selling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Drugs, online pharmacies, supplements.
    Pharma,
    /// Mortgages, refinancing, home loans.
    Mortgage,
    /// Pirated or OEM software, cracks, serials.
    Software,
    /// Stock promotion, penny stocks.
    Stock,
    /// Pornography, adult sites.
    Adult,
    /// Advance-fee, lottery, phishing, money mules.
    Fraud,
    /// Everything else.
    Other,
}

/// A category name that is not one of [`Category::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown spam category {0:?} (expected one of pharma, mortgage, software, stock, adult, fraud, other)"
)]
pub struct UnknownCategory(pub String);

impl Category {
    /// Every category, in the order used for score vectors.
    pub const ALL: [Category; 7] = [
        Category::Pharma,
        Category::Mortgage,
        Category::Software,
        Category::Stock,
        Category::Adult,
        Category::Fraud,
        Category::Other,
    ];

    /// The lower-case name used in manifests and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Pharma => "pharma",
            Category::Mortgage => "mortgage",
            Category::Software => "software",
            Category::Stock => "stock",
            Category::Adult => "adult",
            Category::Fraud => "fraud",
            Category::Other => "other",
        }
    }

    /// Position in [`Category::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

impl std::str::FromStr for Category {
    type Err = UnknownCategory;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Category::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| UnknownCategory(name.to_owned()))
    }
}

impl std::fmt::Display for Category {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_index_matches_order() {
        for (i, category) in Category::ALL.into_iter().enumerate() {
            assert_eq!(category.as_str().parse::<Category>(), Ok(category));
            assert_eq!(category.index(), i);
        }
        assert!("warez".parse::<Category>().is_err());
        assert_eq!(" Pharma ".parse::<Category>(), Ok(Category::Pharma));
    }
}
