"""Synthetic prepared competitions in the table shapes MLE-bench competitions come in that the
four real ones in ../shared lack. Each is laid out as `mlebench prepare` lays out the
competition whose id it borrows (so Sophon's built-in grader for that id grades it), with
learnable signal, and written with the standard library only:

- random-acts-of-pizza: JSON tables (train.json / test.json) with a list-valued column, a
  bool target and train-only columns;
- google-quest-challenge: 30 continuous targets in [0, 1] with few distinct values each;
- tweet-sentiment-extraction: a text-span target (a piece of the input text);
- tabular-playground-series-may-2022: several files: labels in train_labels.csv, a table
  keyed by a column of train and test, and a test table without the submission's ids;
- herbarium-2021-fgvc8: a label with 1,000 classes.

Usage: python3 shapes.py OUT_DIR [ROWS]   (writes OUT_DIR/<competition>/prepared/...)
"""

import csv
import json
import math
import os
import random
import sys

QUEST_TARGETS = (
    "question_asker_intent_understanding question_body_critical question_conversational "
    "question_expect_short_answer question_fact_seeking question_has_commonly_accepted_answer "
    "question_interestingness_others question_interestingness_self question_multi_intent "
    "question_not_really_a_question question_opinion_seeking question_type_choice "
    "question_type_compare question_type_consequence question_type_definition question_type_entity "
    "question_type_instructions question_type_procedure question_type_reason_explanation "
    "question_type_spelling question_well_written answer_helpful answer_level_of_information "
    "answer_plausible answer_relevance answer_satisfaction answer_type_instructions "
    "answer_type_procedure answer_type_reason_explanation answer_well_written"
).split()

FILLER = (
    "the a of and to in is it that for on with as was this but be at by not from or have an they "
    "which one you were all we when there can more if no out so said what up its about into than"
).split()


def write_csv(path, header, rows):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def prepared(out, competition):
    root = os.path.join(out, competition, "prepared")
    os.makedirs(os.path.join(root, "public"), exist_ok=True)
    os.makedirs(os.path.join(root, "private"), exist_ok=True)
    return os.path.join(root, "public"), os.path.join(root, "private")


def sentence(rng, words, n):
    return " ".join(rng.choice(words) for _ in range(n))


def split(rows, rng, test_share=0.3):
    rng.shuffle(rows)
    cut = int(len(rows) * (1 - test_share))
    return rows[:cut], rows[cut:]


def pizza(out, n, rng):
    public, private = prepared(out, "random-acts-of-pizza")
    good = "family kids job rent paycheck broke hungry week".split()
    rows = []
    for i in range(n):
        hits = rng.randint(0, 3)
        age = rng.uniform(0, 2000)
        text = sentence(rng, FILLER, 20) + " " + " ".join(rng.choice(good) for _ in range(hits))
        logit = -1.5 + 0.9 * hits + age / 1500
        rows.append({
            "request_id": "t3_%05x" % (i * 7919 % 1048576),
            "request_text_edit_aware": text,
            "request_title": "[Request] " + sentence(rng, FILLER, 5),
            "requester_account_age_in_days_at_request": round(age, 3),
            "requester_subreddits_at_request": rng.sample(["pics", "funny", "food", "gaming", "askreddit", "jobs"], rng.randint(0, 4)),
            "requester_upvotes_minus_downvotes_at_retrieval": rng.randint(-5, 500),
            "requester_received_pizza": rng.random() < 1 / (1 + math.exp(-logit)),
        })
    train, test = split(rows, rng)
    with open(os.path.join(public, "train.json"), "w") as f:
        json.dump(train, f, indent=1)
    train_only = ("requester_received_pizza", "requester_upvotes_minus_downvotes_at_retrieval")
    with open(os.path.join(public, "test.json"), "w") as f:
        json.dump([{k: v for k, v in r.items() if k not in train_only} for r in test], f)
    write_csv(os.path.join(public, "sampleSubmission.csv"), ["request_id", "requester_received_pizza"], [[r["request_id"], 0] for r in test])
    write_csv(os.path.join(private, "test.csv"), ["request_id", "requester_received_pizza"], [[r["request_id"], int(r["requester_received_pizza"])] for r in test])


def quest(out, n, rng):
    public, private = prepared(out, "google-quest-challenge")
    topics = ["python", "cooking", "physics", "music", "travel"]
    vocab = {t: ["%s%d" % (t[:3], k) for k in range(12)] for t in topics}
    header = ["qa_id", "question_title", "question_body", "answer", "category"]
    rows = []
    for i in range(n):
        topic = rng.randrange(len(topics))
        quality = rng.random()
        body = sentence(rng, FILLER + vocab[topics[topic]], 30)
        answer = sentence(rng, FILLER, int(10 + 60 * quality))
        values = []
        for j in range(len(QUEST_TARGETS)):
            steps = 3 + j % 4  # 3 to 6 levels, all fractions of one
            raw = 0.5 * quality + 0.5 * ((topic + j) % len(topics)) / (len(topics) - 1) + rng.gauss(0, 0.1)
            values.append(round(min(max(round(raw * steps) / steps, 0.0), 1.0), 6))
        rows.append([str(1000 + i), sentence(rng, FILLER, 6), body, answer, topics[topic]] + values)
    train, test = split(rows, rng)
    write_csv(os.path.join(public, "train.csv"), header + QUEST_TARGETS, train)
    write_csv(os.path.join(public, "test.csv"), header, [r[:5] for r in test])
    write_csv(os.path.join(public, "sample_submission.csv"), ["qa_id"] + QUEST_TARGETS, [[r[0]] + [0.5] * 30 for r in test])
    write_csv(os.path.join(private, "test.csv"), ["qa_id"] + QUEST_TARGETS, [[r[0]] + r[5:] for r in test])


def tweets(out, n, rng):
    public, private = prepared(out, "tweet-sentiment-extraction")
    mood = {
        "positive": "love great happy awesome thanks good nice".split(),
        "negative": "hate sad awful bad tired sick worst".split(),
    }
    rows = []
    for i in range(n):
        sentiment = rng.choice(["positive", "negative", "neutral"])
        before, after = sentence(rng, FILLER, rng.randint(2, 8)), sentence(rng, FILLER, rng.randint(2, 8))
        if sentiment == "neutral":
            core = sentence(rng, FILLER, 3)
            text = " ".join([before, core, after])
            selected = text
        else:
            core = " ".join([rng.choice(mood[sentiment]), rng.choice(FILLER), rng.choice(mood[sentiment])][: rng.randint(1, 3)])
            text = " ".join([before, core, after])
            selected = core
        rows.append(["%010x" % rng.getrandbits(40), text, selected, sentiment])
    train, test = split(rows, rng)
    write_csv(os.path.join(public, "train.csv"), ["textID", "text", "selected_text", "sentiment"], train)
    write_csv(os.path.join(public, "test.csv"), ["textID", "text", "sentiment"], [[r[0], r[1], r[3]] for r in test])
    write_csv(os.path.join(public, "sample_submission.csv"), ["textID", "selected_text"], [[r[0], ""] for r in test])
    write_csv(os.path.join(private, "test.csv"), ["textID", "selected_text"], [[r[0], r[2]] for r in test])


def several_files(out, n, rng):
    public, private = prepared(out, "tabular-playground-series-may-2022")
    regions = ["r%02d" % k for k in range(20)]
    risk = {r: rng.gauss(0, 1.5) for r in regions}
    write_csv(os.path.join(public, "regions.csv"), ["region", "region_risk", "region_size"], [[r, round(risk[r], 4), rng.randint(1, 9)] for r in regions])
    rows = []
    for i in range(n):
        f = [rng.gauss(0, 1) for _ in range(5)]
        region = rng.choice(regions)
        logit = f[0] - 0.8 * f[1] + 1.2 * risk[region]
        rows.append([i, region] + [round(x, 5) for x in f] + [int(rng.random() < 1 / (1 + math.exp(-logit)))])
    train, test = split(rows, rng)
    features = ["region"] + ["f_%d" % k for k in range(5)]
    write_csv(os.path.join(public, "train.csv"), ["id"] + features, [r[:7] for r in train])
    write_csv(os.path.join(public, "train_labels.csv"), ["id", "target"], [[r[0], r[7]] for r in train])
    # The test table carries no id: the sample submission lists the ids in its row order.
    write_csv(os.path.join(public, "test.csv"), features, [r[1:7] for r in test])
    write_csv(os.path.join(public, "sample_submission.csv"), ["id", "target"], [[r[0], 0.5] for r in test])
    write_csv(os.path.join(private, "test.csv"), ["id", "target"], [[r[0], r[7]] for r in test])


def many_classes(out, n, rng):
    public, private = prepared(out, "herbarium-2021-fgvc8")
    centres = [[rng.gauss(0, 3) for _ in range(6)] for _ in range(1000)]
    rows = []
    for i in range(n):
        # A few common classes and a long tail, as in species data.
        label = min(int(rng.paretovariate(1.0)) - 1, 999)
        x = [round(c + rng.gauss(0, 0.5), 4) for c in centres[label]]
        rows.append([i, label] + x)
    train, test = split(rows, rng)
    features = ["f%d" % k for k in range(6)]
    write_csv(os.path.join(public, "train.csv"), ["Id", "Predicted"] + features, train)
    write_csv(os.path.join(public, "test.csv"), ["Id"] + features, [[r[0]] + r[2:] for r in test])
    write_csv(os.path.join(public, "sample_submission.csv"), ["Id", "Predicted"], [[r[0], 0] for r in test])
    write_csv(os.path.join(private, "answers.csv"), ["Id", "Predicted"], [[r[0], r[1]] for r in test])


SHAPES = {
    "random-acts-of-pizza": pizza,
    "google-quest-challenge": quest,
    "tweet-sentiment-extraction": tweets,
    "tabular-playground-series-may-2022": several_files,
    "herbarium-2021-fgvc8": many_classes,
}


def main(argv):
    if len(argv) < 2:
        raise SystemExit("usage: shapes.py OUT_DIR [ROWS]")
    rows = int(argv[2]) if len(argv) > 2 else 1500
    for k, (name, make) in enumerate(SHAPES.items()):
        make(argv[1], rows, random.Random(k))
        print(name)


if __name__ == "__main__":
    main(sys.argv)
