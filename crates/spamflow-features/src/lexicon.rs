//! Word lists of the kinds of spam: prior knowledge, not learned from any corpus.
//!
//! A word of a list found in the subject or body adds the feature `lex:<list>` (once per
//! occurrence), besides the word's own feature. A model learns one weight for the list from the
//! training mail that uses some of its words, and that weight then also carries the words the
//! training mail never used: drug and product names of a later season (`cialis`, `levitra`), other
//! software titles. The lists are written from general knowledge of spam, not chosen by what helps
//! on any evaluation set; the words are in the form [`crate::normalize::words`] makes them
//! (lower case, de-obfuscated).
//!
//! A model records the version of the lists it was trained with ([`crate::FeatureConfig::lexicons`]),
//! not the lists: a version's lists never change (a test pins them), and a build that wants other
//! lists adds a version beside the old ones, so every model keeps extracting what it learned.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::LazyLock;

/// The newest version of the word lists this build has (0 stands for none).
pub const LEXICON_VERSION: u32 = 1;

/// The word lists of version 1 (28 November 2026): name and words.
const VERSION_1: [(&str, &[&str]); 6] = [
    (
        "pharma",
        &[
            "viagra",
            "cialis",
            "levitra",
            "xanax",
            "valium",
            "vicodin",
            "phentermine",
            "ambien",
            "tramadol",
            "hydrocodone",
            "oxycodone",
            "oxycontin",
            "propecia",
            "meridia",
            "xenical",
            "adipex",
            "ultram",
            "carisoprodol",
            "diazepam",
            "alprazolam",
            "lorazepam",
            "ativan",
            "zoloft",
            "prozac",
            "paxil",
            "celebrex",
            "vioxx",
            "sildenafil",
            "tadalafil",
            "vardenafil",
            "didrex",
            "bontril",
            "soma",
            "zyban",
            "valtrex",
            "lipitor",
            "hgh",
            "pharmacy",
            "pharmacies",
            "pharmaceutical",
            "pharmaceuticals",
            "pharmacist",
            "drugstore",
            "prescription",
            "prescriptions",
            "prescribe",
            "prescribed",
            "meds",
            "medication",
            "medications",
            "pill",
            "pills",
            "rx",
            "erectile",
            "erection",
            "erections",
            "impotence",
            "dysfunction",
            "libido",
            "penis",
            "enlargement",
            "dosage",
        ],
    ),
    (
        "mortgage",
        &[
            "mortgage",
            "mortgages",
            "refinance",
            "refinanced",
            "refinancing",
            "refi",
            "lender",
            "lenders",
            "loan",
            "loans",
            "homeowner",
            "homeowners",
            "apr",
            "equity",
            "escrow",
            "amortization",
            "preapproved",
            "refinances",
            "foreclosure",
            "realtor",
            "realtors",
            "underwriting",
        ],
    ),
    (
        "software",
        &[
            "oem",
            "software",
            "softwares",
            "adobe",
            "photoshop",
            "acrobat",
            "illustrator",
            "dreamweaver",
            "macromedia",
            "microsoft",
            "msoffice",
            "autocad",
            "coreldraw",
            "corel",
            "norton",
            "symantec",
            "quickbooks",
            "quark",
            "quarkxpress",
            "premiere",
            "fireworks",
            "licensed",
            "license",
            "licence",
            "licenses",
            "serial",
            "serials",
            "crack",
            "cracked",
            "warez",
            "keygen",
            "download",
            "downloads",
            "retail",
        ],
    ),
    (
        "stock",
        &[
            "stock",
            "stocks",
            "shares",
            "shareholder",
            "shareholders",
            "investor",
            "investors",
            "otc",
            "otcbb",
            "pinksheets",
            "ticker",
            "undervalued",
            "nasdaq",
            "amex",
            "nyse",
            "symbol",
            "dividend",
            "dividends",
            "valuation",
            "trading",
            "brokerage",
        ],
    ),
    (
        "adult",
        &[
            "sex", "sexy", "porn", "porno", "xxx", "nude", "nudes", "naked", "horny", "hardcore",
            "erotic", "webcam", "webcams", "milf", "babes", "sluts", "slut", "pussy", "lesbian",
            "lesbians", "orgasm", "fetish", "nympho", "explicit",
        ],
    ),
    (
        "fraud",
        &[
            "beneficiary",
            "inheritance",
            "kin",
            "barrister",
            "deceased",
            "confidential",
            "transaction",
            "remittance",
            "consignment",
            "lottery",
            "lotto",
            "winnings",
            "claims",
            "payout",
            "paypal",
            "ebay",
            "verify",
            "verification",
            "suspended",
            "unauthorized",
            "password",
            "login",
            "nigeria",
            "nigerian",
            "dollars",
            "usd",
            "million",
            "millions",
            "wire",
            "diplomat",
            "bank",
        ],
    ),
];

/// Hashes that are already uniform, used as they are.
#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }

    /// Required by the trait; the lexicon's keys are `u64`, which hash through `write_u64`.
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A word's list, by the word's hash.
pub(crate) struct Lexicon {
    /// One bit per value of a hash's low 12 bits, set when a listed word's hash has it: most
    /// words are on no list, and one bit in a cache line tells so, before any map lookup.
    filter: [u64; 64],
    lists: HashMap<u64, &'static str, BuildHasherDefault<Identity>>,
}

impl Lexicon {
    /// `lists` keyed by the body-word hash of each word.
    fn new(lists: &[(&'static str, &[&str])]) -> Self {
        let lists: HashMap<_, _, _> = lists
            .iter()
            .flat_map(|&(name, words)| words.iter().map(move |word| (word, name)))
            .map(|(word, name)| (crate::extract::body_word_hash(word), name))
            .collect();
        let mut filter = [0; 64];
        for &hash in lists.keys() {
            let (word, bit) = filter_position(hash);
            filter[word] |= bit;
        }
        Lexicon { filter, lists }
    }

    /// The list of the word whose hash is `hash`, if any.
    pub(crate) fn list_of(&self, hash: u64) -> Option<&'static str> {
        let (word, bit) = filter_position(hash);
        if self.filter[word] & bit == 0 {
            return None;
        }
        self.lists.get(&hash).copied()
    }
}

/// Where `hash` sits in [`Lexicon::filter`]: the word and its bit.
fn filter_position(hash: u64) -> (usize, u64) {
    let low = (hash & 0xfff) as usize;
    (low / 64, 1 << (low % 64))
}

/// The lists of version 1 keyed by body-word hashes.
static VERSION_1_BY_HASH: LazyLock<Lexicon> = LazyLock::new(|| Lexicon::new(&VERSION_1));

/// The word lists of `version`, keyed by body-word hashes; `None` for 0 (no lists) and for a
/// version this build does not have (a model that names one is refused when it loads).
pub(crate) fn lexicon(version: u32) -> Option<&'static Lexicon> {
    match version {
        1 => Some(&VERSION_1_BY_HASH),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_word_is_one_word_as_the_splitter_makes_it_and_on_one_list() {
        let mut seen = std::collections::HashSet::new();
        for (name, words) in VERSION_1 {
            for &word in words {
                let mut split = Vec::new();
                crate::normalize::words(word, 10, |w| split.push(w.to_owned()));
                assert_eq!(split, [word], "{name}: {word}");
                assert!(seen.insert(word), "{word} is on two lists");
            }
        }
        let lexicon = Lexicon::new(&VERSION_1);
        assert_eq!(lexicon.lists.len(), seen.len());
        assert_eq!(
            lexicon.list_of(crate::extract::body_word_hash("cialis")),
            Some("pharma")
        );
        assert_eq!(
            lexicon.list_of(crate::extract::body_word_hash("meeting")),
            None
        );
        assert!(super::lexicon(0).is_none() && super::lexicon(LEXICON_VERSION + 1).is_none());
    }

    #[test]
    fn version_1_lists_stay_as_models_learned_them() {
        // Models record the version of their lists, not the words: a word added to or removed
        // from version 1 would change the features of every model trained with it. Add a
        // version instead, keep this one, and raise `LEXICON_VERSION`.
        let text: String = VERSION_1
            .iter()
            .map(|(name, words)| format!("{name}:{}\n", words.join(",")))
            .collect();
        assert_eq!(
            xxhash_rust::xxh3::xxh3_64(text.as_bytes()),
            0xf799_2d7e_d522_b1f9,
            "the word lists of version 1 changed"
        );
    }
}
