//! Medal thresholds of MLE-bench's competitions, built in.
//!
//! `mlebench prepare` leaves no leaderboard in the data directory: MLE-bench keeps the Kaggle
//! leaderboards inside its own package. So that `sophon grade`, `run` and `ab` report medals
//! for any prepared data directory, Sophon carries what it needs of them: per competition,
//! the number of teams and the gold, silver, bronze and median scores, computed from the
//! leaderboard with MLE-bench's rules ([`Thresholds::from_scores`]). `tests/all/grading.rs`
//! recomputes the table from the leaderboards and checks it matches to the bit.
//!
//! A `leaderboard.csv` found on disk still overrides the table ([`super::Grader::thresholds`]).

use sophon_grading::Thresholds;

/// `competition,teams,gold,silver,bronze,median,lower_is_better`, one row per competition
/// with a leaderboard, sorted by id; numbers in Rust's shortest round-trip form.
pub const TABLE: &str = include_str!("medal-thresholds.csv");

const HEADER: &str = "competition,teams,gold,silver,bronze,median,lower_is_better";

/// The built-in thresholds of `id`, if MLE-bench has a leaderboard for it.
pub fn builtin(id: &str) -> Option<Thresholds> {
    TABLE.lines().skip(1).find_map(|line| {
        let (name, rest) = line.split_once(',')?;
        (name == id).then(|| parse(rest))?
    })
}

/// How many competitions the table covers.
pub fn count() -> usize {
    TABLE.lines().skip(1).filter(|l| !l.is_empty()).count()
}

fn parse(fields: &str) -> Option<Thresholds> {
    let f: Vec<&str> = fields.split(',').collect();
    let [teams, gold, silver, bronze, median, lower] = f.as_slice() else {
        return None;
    };
    Some(Thresholds {
        teams: teams.parse().ok()?,
        gold: gold.parse().ok()?,
        silver: silver.parse().ok()?,
        bronze: bronze.parse().ok()?,
        median: median.parse().ok()?,
        lower_is_better: lower.parse().ok()?,
    })
}

/// The table's text for `rows` (sorted here by id): what [`TABLE`] holds when it is current.
pub fn render(rows: &[(String, Thresholds)]) -> String {
    let mut rows: Vec<&(String, Thresholds)> = rows.iter().collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = format!("{HEADER}\n");
    for (id, t) in rows {
        out.push_str(&format!(
            "{id},{},{},{},{},{},{}\n",
            t.teams, t.gold, t.silver, t.bronze, t.median, t.lower_is_better
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_parses_and_round_trips() {
        assert!(TABLE.starts_with(HEADER));
        let rows: Vec<(String, Thresholds)> = TABLE
            .lines()
            .skip(1)
            .map(|l| {
                let id = l.split(',').next().unwrap().to_string();
                let t = builtin(&id).unwrap_or_else(|| panic!("row `{l}` does not parse"));
                (id, t)
            })
            .collect();
        assert_eq!(rows.len(), count());
        assert_eq!(render(&rows), TABLE);
        assert!(builtin("no-such-competition").is_none());
    }

    #[test]
    fn a_known_competition_gets_its_medals() {
        let t = builtin("spaceship-titanic").expect("spaceship-titanic is in MLE-bench");
        assert!(!t.lower_is_better);
        assert!(t.gold >= t.silver && t.silver >= t.bronze && t.bronze >= t.median);
        assert!(t.medals(Some(t.gold)).gold);
    }
}
