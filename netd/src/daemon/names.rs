//! Docker-style random container names (`eager_turing`) for `run` without `--name`.
use rand::seq::IndexedRandom;

const ADJECTIVES: &[&str] = &[
    "admiring",
    "affectionate",
    "amazing",
    "awesome",
    "blissful",
    "bold",
    "brave",
    "charming",
    "clever",
    "compassionate",
    "competent",
    "cool",
    "dazzling",
    "determined",
    "eager",
    "ecstatic",
    "elastic",
    "elegant",
    "epic",
    "festive",
    "focused",
    "friendly",
    "gallant",
    "gifted",
    "goofy",
    "happy",
    "hopeful",
    "inspiring",
    "jolly",
    "keen",
    "kind",
    "laughing",
    "loving",
    "magical",
    "modest",
    "nice",
    "nostalgic",
    "objective",
    "optimistic",
    "peaceful",
    "practical",
    "priceless",
    "quirky",
    "relaxed",
    "serene",
    "sharp",
    "stoic",
    "sweet",
    "tender",
    "trusting",
    "upbeat",
    "vibrant",
    "wizardly",
    "youthful",
    "zealous",
];

const SURNAMES: &[&str] = &[
    "agnesi",
    "albattani",
    "archimedes",
    "babbage",
    "bardeen",
    "bell",
    "bohr",
    "brattain",
    "cerf",
    "curie",
    "darwin",
    "dijkstra",
    "einstein",
    "euclid",
    "euler",
    "faraday",
    "fermat",
    "fermi",
    "feynman",
    "galileo",
    "gauss",
    "goldberg",
    "hamilton",
    "hawking",
    "hodgkin",
    "hopper",
    "hypatia",
    "kepler",
    "knuth",
    "lamport",
    "liskov",
    "lovelace",
    "maxwell",
    "mccarthy",
    "meitner",
    "newton",
    "noether",
    "pascal",
    "pike",
    "ritchie",
    "shannon",
    "stallman",
    "thompson",
    "torvalds",
    "turing",
    "wozniak",
];

/// A random `adjective_surname`; from the second attempt on a digit is appended, as Docker
/// does when a name is taken.
pub fn random(attempt: usize) -> String {
    let mut rng = rand::rng();
    let name = format!(
        "{}_{}",
        ADJECTIVES.choose(&mut rng).expect("adjectives"),
        SURNAMES.choose(&mut rng).expect("surnames")
    );
    if attempt == 0 {
        name
    } else {
        format!("{name}{}", rand::random_range(0..10))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_look_like_dockers() {
        for attempt in 0..50 {
            let name = super::random(attempt);
            let (left, right) = name.split_once('_').expect("adjective_surname");
            assert!(super::ADJECTIVES.contains(&left), "{name}");
            let right = right.trim_end_matches(|c: char| c.is_ascii_digit());
            assert!(super::SURNAMES.contains(&right), "{name}");
            assert_eq!(attempt > 0, name.ends_with(|c: char| c.is_ascii_digit()), "{name}");
        }
    }
}
