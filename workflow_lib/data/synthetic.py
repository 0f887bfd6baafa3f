"""The embedded data set: synthetic long-form Reddit-style posts in exactly ReDSM5's CSV format.

The real ReDSM5 cannot be downloaded from these machines, so the default pipeline
trains on posts generated here. Generator version 2 is shaped like the real set
(Bao, Perez, Parapar, CIKM 2025: 1,484 posts, 294.7 words on average, 2 to 6,990):

* **Symptom rates by quota.** Each symptom is present in exactly
  ``round(n_posts * real_count / 1484)`` posts (real counts: DEPRESSED_MOOD 328,
  WORTHLESSNESS 311, SUICIDAL_THOUGHTS 165, FATIGUE 124, ANHEDONIA 124,
  SLEEP_ISSUES 102, COGNITIVE_ISSUES 59, APPETITE_CHANGE 44, PSYCHOMOTOR 35), and
  ``round(n_posts * 392 / 1484)`` posts have none, for any ``n_posts`` (sets too
  small to give every symptomatic post a symptom have more symptom-free posts).
  Most symptomatic posts show one symptom; the extra occurrences go preferably to
  posts whose first symptom is related (mood + worthlessness, sleep + fatigue, ...).
* **Lengths by quantile.** Target word counts are stratified draws (one per
  ``1/n_posts`` quantile band, shuffled) from a lognormal with median
  ``LENGTH_MEDIAN`` and sigma ``LENGTH_SIGMA``, clipped to ``[MIN_WORDS, MAX_WORDS]``:
  about 295 words on average and 185 at the median for any size, a few posts of
  2-15 words, and a long tail (the longest of 1,484 posts has several thousand
  words). Lengths are drawn independently of the labels.
* **Evidence anywhere.** Each present symptom gets ``1 + Poisson(min(5, words / 300))``
  passages of 1-3 status-1 sentences (no wording twice in a post); a sentence may carry two
  symptoms (two rows, one sentence_id). Each passage, hard negative and
  SPECIAL_CASE sentence sits at a uniformly random position among the narrative
  sentences, so truncation to the first 128 or 512 tokens cuts some evidence off.
  Every labelled sentence occurs verbatim in its post and its ``sentence_id`` is
  ``<post_id>_<i>``, ``i`` its index in ``align.split_sentences(text)``.
* **Narratives, not templates.** Posts are first-person rambles in paragraphs
  (blank-line separated) about one topic, or more in long posts (work, school,
  family, relationships, friends, money, games, health, housing, pets, hobbies,
  commuting, food, sport, bad news, everyday feelings), with Reddit asides.
  Evidence comes from per-symptom paraphrase pools with synonym slots, many of them
  implicit ("my legs feel like lead by lunchtime"); word variants (``SYNONYMS``)
  multiply the wordings, so most phrasings are rare. Openers and tails ("Honestly,",
  "tbh") are used at the same rates in evidence and narrative, and narrative clauses
  use symptom words in other senses (``VOCAB_NOISE``: "the fridge is empty"), so no
  single word or phrase marks a symptom.
* **Hard negatives** share the symptoms' vocabulary: negations, other people's
  symptoms, recovered past episodes, general remarks ("I read that insomnia ..."),
  and other word senses ("my phone battery is drained"); their number grows with
  the post's length. About half carry a status-0 row (considered and rejected), as
  in the real set. A few SPECIAL_CASE rows mark diagnosis/medication mentions.

Labels follow construction exactly (no random label noise). Output is
byte-identical for the same ``(n_posts, seed)``: one ``random.Random(seed)``, lists
only (no set or hash order). Bump ``GENERATOR_VERSION`` whenever output changes.
"""

from __future__ import annotations

import csv
import math
import random
import re
from pathlib import Path
from statistics import NormalDist

from workflow_lib.data.align import split_sentences
from workflow_lib.symptoms import SYMPTOMS

GENERATOR_VERSION = "2"

POSTS_HEADER = ("post_id", "text")
ANNOTATIONS_HEADER = ("post_id", "sentence_id", "sentence_text", "DSM5_symptom", "status", "explanation")

# Posts per symptom in the real ReDSM5 (of REAL_POSTS); REAL_NONE posts have no symptom.
REAL_POSTS = 1484
REAL_COUNTS: dict[str, int] = {
    "DEPRESSED_MOOD": 328,
    "ANHEDONIA": 124,
    "APPETITE_CHANGE": 44,
    "SLEEP_ISSUES": 102,
    "PSYCHOMOTOR": 35,
    "FATIGUE": 124,
    "WORTHLESSNESS": 311,
    "COGNITIVE_ISSUES": 59,
    "SUICIDAL_THOUGHTS": 165,
}
REAL_NONE = 392
TARGET_RATES: dict[str, float] = {s: REAL_COUNTS[s] / REAL_POSTS for s in SYMPTOMS}
NO_SYMPTOM_RATE = REAL_NONE / REAL_POSTS

# Target words per post: lognormal(log(LENGTH_MEDIAN), LENGTH_SIGMA) clipped to [MIN_WORDS, MAX_WORDS].
LENGTH_MEDIAN = 178.0
LENGTH_SIGMA = 0.98
MIN_WORDS = 2
MAX_WORDS = 7000
SHORT_POST_WORDS = 16  # below this a post is one or two short sentences

HARD_NEGATIVES_BASE = 0.3  # expected hard-negative sentences per post ...
HARD_NEGATIVES_PER_WORD = 1 / 625  # ... plus this many per target word
STATUS0_RATE = 0.5  # hard negatives that also get a status-0 row
COMBO_RATE = 0.35  # pairs of present symptoms expressed by one sentence
WORDS_PER_EXTRA_PASSAGE = 300.0  # a present symptom gets 1 + Poisson(min(EXTRA_MAX, words / this)) passages
PASSAGES_EXTRA_MAX = 5.0
PASSAGE_GROWTH = (0.5, 0.25)  # a passage has 1 sentence, +1 with p 0.5, +1 more with p 0.25
SPECIAL_CASE_RATE = 0.03
CONTEXT_RATE = 0.05  # evidence fused with a clause of the post's topic
WORDS_PER_TOPIC = 1000.0  # a post has 1 + words // this topics (+1 with p 0.3), at most 5
COMPOUND_RATE = 0.55  # narrative sentences made of two clauses
VOCAB_NOISE_RATE = 0.12  # narrative clauses drawn from VOCAB_NOISE
SYNONYM_RATE = 0.5  # words of evidence and hard negatives replaced by a SYNONYMS variant
OPENER_RATE = 0.3  # sentences (evidence or narrative) that start with one of OPENERS
TAIL_RATE = 0.25  # sentences that end with one of TAILS

# Extra symptom occurrences (beyond one per symptomatic post) prefer posts whose first symptom is related.
AFFINITY: dict[tuple[str, str], float] = {
    ("DEPRESSED_MOOD", "WORTHLESSNESS"): 5.0,
    ("DEPRESSED_MOOD", "ANHEDONIA"): 4.0,
    ("DEPRESSED_MOOD", "SUICIDAL_THOUGHTS"): 4.0,
    ("WORTHLESSNESS", "SUICIDAL_THOUGHTS"): 4.0,
    ("SLEEP_ISSUES", "FATIGUE"): 5.0,
    ("FATIGUE", "COGNITIVE_ISSUES"): 3.0,
    ("DEPRESSED_MOOD", "SLEEP_ISSUES"): 2.0,
    ("ANHEDONIA", "FATIGUE"): 2.0,
    ("APPETITE_CHANGE", "DEPRESSED_MOOD"): 2.0,
    ("PSYCHOMOTOR", "SLEEP_ISSUES"): 2.0,
    ("DEPRESSED_MOOD", "FATIGUE"): 2.0,
    ("ANHEDONIA", "WORTHLESSNESS"): 2.0,
}

# ---------------------------------------------------------------------------------------------
# Slot fillers. A template names a slot as {name}; each occurrence draws independently.
SLOTS: dict[str, list[str]] = {
    "time": [
        "lately",
        "these days",
        "most days",
        "all the time",
        "pretty much every day",
        "at the moment",
        "this month",
        "recently",
        "for a while now",
        "this semester",
        "since spring",
    ],
    "since": [
        "for weeks now",
        "for the past month",
        "since the start of the year",
        "for months",
        "since the summer",
        "since I moved",
        "ever since the winter started",
        "for a couple of months now",
        "all semester",
        "since my birthday",
        "since the breakup",
        "since Christmas",
        "since I started this job",
    ],
    "duration": [
        "months",
        "a long time",
        "over a year",
        "weeks",
        "ages",
        "almost two years",
        "forever",
        "a couple of months",
        "since last spring",
    ],
    "relative": [
        "sister",
        "brother",
        "mom",
        "dad",
        "roommate",
        "best friend",
        "coworker",
        "cousin",
        "girlfriend",
        "boyfriend",
        "husband",
        "wife",
        "neighbor",
        "aunt",
        "grandpa",
        "grandma",
        "son",
        "daughter",
        "flatmate",
        "manager",
        "uncle",
        "stepdad",
        "partner",
        "little brother",
    ],
    "partner": ["girlfriend", "boyfriend", "partner", "wife", "husband", "fiance", "fiancee"],
    "name": [
        "Jake",
        "Sarah",
        "Mike",
        "Emma",
        "Chris",
        "Priya",
        "Tom",
        "Alex",
        "Nina",
        "Sam",
        "Dan",
        "Leah",
        "Marcus",
        "Jess",
        "Omar",
        "Kate",
        "Luis",
        "Hannah",
        "Ben",
        "Mia",
        "Tyler",
        "Aisha",
        "Kevin",
        "Zoe",
    ],
    "activity": [
        "gaming",
        "drawing",
        "playing guitar",
        "reading",
        "going to the gym",
        "hiking",
        "cooking",
        "watching movies",
        "painting",
        "running",
        "playing football",
        "photography",
        "writing",
        "baking",
        "skateboarding",
        "knitting",
        "swimming",
        "playing piano",
        "gardening",
        "climbing",
        "chess",
        "fishing",
        "dancing",
        "playing basketball",
        "making music",
        "modding cars",
        "building Lego",
        "journaling",
        "thrifting",
        "birdwatching",
    ],
    "hobby_obj": [
        "guitar",
        "sketchbook",
        "camera",
        "paints",
        "console",
        "running shoes",
        "books",
        "bike",
        "piano",
        "fishing rod",
        "climbing gear",
        "sewing machine",
        "keyboard",
        "skateboard",
        "drum kit",
        "telescope",
        "easel",
        "gaming PC",
    ],
    "game": [
        "Minecraft",
        "Stardew Valley",
        "Elden Ring",
        "League",
        "Animal Crossing",
        "Skyrim",
        "Fortnite",
        "Zelda",
        "Overwatch",
        "Valorant",
        "Civ 6",
        "Apex",
        "Rocket League",
        "Hollow Knight",
        "Baldur's Gate",
        "Destiny",
        "FFXIV",
        "Terraria",
        "the new Pokemon",
        "Dark Souls",
    ],
    "treat": [
        "my favourite music",
        "seeing my friends",
        "going to concerts",
        "playing with my dog",
        "a day at the beach",
        "video games",
        "my favourite food",
        "a good movie",
        "going out on weekends",
        "new episodes of my favourite show",
        "a long drive with the windows down",
    ],
    "event": [
        "my birthday",
        "the holidays",
        "vacations",
        "new albums from my favourite band",
        "weekends",
        "the trip we planned",
        "Christmas",
        "summer break",
        "the release of {game}",
    ],
    "past": [
        "Two years ago",
        "Back in high school",
        "A few years back",
        "When I was in college",
        "Last winter",
        "In my early twenties",
        "Years ago",
        "Around the time of my divorce",
        "After my first breakup",
        "When I was a teenager",
        "Three years ago",
        "Before I changed jobs",
        "In my first year of uni",
        "After my dad's surgery",
    ],
    # synonym pools of the evidence and hard-negative templates
    "sad": [
        "sad",
        "empty",
        "hopeless",
        "miserable",
        "down",
        "low",
        "gloomy",
        "heartbroken",
        "hollow",
        "crushed",
        "blue",
        "defeated",
        "despondent",
        "wretched",
        "glum",
        "dejected",
        "broken",
        "awful",
        "rotten",
        "so depressed",
        "down in the dumps",
        "like garbage",
        "in pieces",
        "flat and grey",
        "really low",
        "numb and sad",
        "like I'm underwater",
        "like crap emotionally",
        "heavy-hearted",
        "despairing",
    ],
    "cry_verb": [
        "cry",
        "sob",
        "tear up",
        "break down",
        "bawl my eyes out",
        "weep",
        "fall apart",
        "end up in tears",
        "lose it and cry",
        "choke up",
    ],
    "tired": [
        "exhausted",
        "drained",
        "wiped out",
        "worn out",
        "spent",
        "fried",
        "knackered",
        "shattered",
        "beat",
        "run down",
        "burnt out",
        "depleted",
        "dead on my feet",
        "sluggish",
        "lethargic",
        "fatigued",
        "completely done",
        "bone tired",
        "zonked",
        "running on empty",
        "so tired",
        "wrecked",
    ],
    "no_energy": [
        "no energy",
        "zero energy",
        "nothing left in me",
        "no strength",
        "no gas in the tank",
        "no stamina",
        "no juice left",
        "no fuel",
        "not an ounce of energy",
        "nothing in the tank",
    ],
    "worthless": [
        "worthless",
        "useless",
        "pathetic",
        "not good enough",
        "unlovable",
        "inadequate",
        "defective",
        "hopeless as a person",
        "like trash",
        "like dead weight",
        "less than everyone else",
        "no good",
        "good for nothing",
        "beneath everyone",
        "utterly useless",
    ],
    "hate_self": [
        "hate myself",
        "can't stand myself",
        "despise myself",
        "loathe myself",
        "am so ashamed of myself",
        "can't look at myself in the mirror",
        "am disgusted with myself",
        "feel like scum",
    ],
    "guilt": [
        "guilty",
        "ashamed",
        "so much guilt",
        "like it's all my fault",
        "like a terrible person",
        "eaten up by guilt",
    ],
    "sleepless": [
        "can't sleep",
        "can't fall asleep",
        "lie awake",
        "barely sleep",
        "can't drift off",
        "keep waking up",
        "get almost no sleep",
        "can't stay asleep",
        "am wide awake",
    ],
    "oversleep": [
        "sleep 14 hours",
        "sleep all day",
        "oversleep",
        "nap for hours",
        "sleep through my alarms",
        "stay in bed till 2pm",
        "can't stop sleeping",
        "sleep half the day away",
    ],
    "nights": [
        "most nights",
        "every night",
        "night after night",
        "almost every night",
        "pretty much every night",
        "four or five nights a week",
    ],
    "focus_bad": [
        "can't concentrate",
        "can't focus",
        "zone out",
        "space out",
        "lose my train of thought",
        "can't think straight",
        "can't keep my mind on anything",
        "can't retain anything",
        "blank out",
        "drift off mid-task",
        "can't hold a thought",
    ],
    "fog": [
        "foggy",
        "fuzzy",
        "cloudy",
        "scrambled",
        "mushy",
        "slow",
        "like static",
        "full of cotton wool",
        "like soup",
        "muddled",
    ],
    "end_it": [
        "end it",
        "kill myself",
        "end my life",
        "not be here anymore",
        "disappear for good",
        "stop existing",
        "go to sleep and not wake up",
        "be gone",
        "unalive myself",
        "just end everything",
        "take my own life",
        "die",
    ],
    "ending_it": [
        "ending it",
        "killing myself",
        "ending my life",
        "not being here anymore",
        "disappearing for good",
        "not existing",
        "not waking up",
        "being dead",
        "unaliving myself",
        "ending everything",
        "taking my own life",
        "dying",
        "suicide",
        "how I would do it",
    ],
    "think_about": [
        "think about",
        "keep thinking about",
        "fantasize about",
        "daydream about",
        "can't stop thinking about",
        "catch myself thinking about",
        "keep coming back to the idea of",
        "obsess over",
        "have been seriously considering",
    ],
    "lost_interest": [
        "don't care about",
        "lost interest in",
        "can't enjoy",
        "can't be bothered with",
        "feel nothing about",
        "get nothing out of",
        "stopped caring about",
        "have zero interest in",
        "am bored by",
        "can't get into",
        "don't get anything from",
    ],
    "no_joy": [
        "no joy",
        "no pleasure",
        "no fun",
        "no spark",
        "nothing",
        "zero satisfaction",
        "no excitement",
        "no enjoyment",
    ],
    "not_hungry": [
        "have no appetite",
        "am never hungry",
        "barely eat",
        "skip most meals",
        "can't stomach food",
        "forget to eat",
        "eat maybe once a day",
        "have to force food down",
        "push my plate away",
    ],
    "overeat": [
        "binge eat",
        "stress eat",
        "comfort eat",
        "eat way too much",
        "can't stop eating",
        "eat until I feel sick",
        "raid the fridge",
        "snack nonstop",
        "graze all day",
    ],
    "restless": [
        "restless",
        "agitated",
        "fidgety",
        "jittery",
        "wound up",
        "keyed up",
        "antsy",
        "twitchy",
        "unable to keep still",
    ],
    "slowed": [
        "slowed down",
        "sluggish",
        "in slow motion",
        "heavy and slow",
        "like I'm underwater",
        "delayed",
        "like a sloth",
        "stuck in molasses",
    ],
    "pace": [
        "pace",
        "walk in circles",
        "get up and sit down again",
        "tap my feet",
        "bounce my leg",
        "wring my hands",
        "pick at my skin",
        "drum my fingers",
        "rock back and forth",
        "shift around in my seat",
    ],
    "energy": ["energy", "strength", "stamina", "fuel", "juice", "drive", "oomph", "power", "get-up-and-go"],
    "body": ["body", "whole body", "entire body", "every limb", "every muscle", "frame", "whole system"],
    "heavy": ["heavy", "like lead", "like concrete", "weighed down", "like sandbags", "leaden", "like wet cement"],
    "collapse": ["collapse", "crash", "flop", "pass out", "faceplant", "sink", "keel over"],
    "couch": ["couch", "sofa", "bed", "floor", "futon", "recliner", "mattress"],
    "sad_noun": [
        "sadness",
        "grief",
        "gloom",
        "despair",
        "heaviness",
        "misery",
        "sorrow",
        "ache",
        "emptiness",
        "darkness",
        "hopelessness",
        "dread",
    ],
    "cloud": ["dark cloud", "grey fog", "black cloud", "weight", "shadow", "storm cloud", "fog", "grey blanket"],
    "joy": ["joy", "pleasure", "fun", "excitement", "enjoyment", "satisfaction", "spark", "happiness", "buzz"],
    "pointless": ["pointless", "meaningless", "flat", "empty", "dull", "boring", "grey", "hollow", "like a chore"],
    "care": [
        "care about",
        "feel anything for",
        "get excited about",
        "look forward to",
        "want to do",
        "enjoy",
        "get into",
    ],
    "meals": ["food", "meals", "eating", "dinner", "breakfast", "anything on my plate", "lunch", "cooking"],
    "hunger": ["hunger", "appetite", "cravings", "desire to eat", "interest in food"],
    "dropped": ["lost", "dropped", "shed", "gone down"],
    "gained": ["gained", "put on", "piled on", "gone up"],
    "awake": ["awake", "up", "wide awake", "staring at the ceiling", "lying there", "tossing and turning"],
    "noticed": ["noticed", "pointed out", "commented on", "asked about", "mentioned", "brought up"],
    "failure": ["failure", "mess", "disappointment", "screw-up", "joke", "fraud", "let-down", "loser"],
    "fault": ["my fault", "on me", "because of me", "down to me", "something I caused"],
    "deserve": ["deserve", "have earned", "am worthy of", "have any right to"],
    "brain": ["brain", "mind", "head", "thoughts", "memory"],
    "reread": ["read", "reread", "go over", "look at", "skim"],
    "page": ["page", "paragraph", "email", "sentence", "slide", "set of instructions"],
    "death": ["death", "dying", "not existing", "the end", "my own funeral", "not being here", "being gone"],
    "gone": ["gone", "dead", "not around", "out of the picture", "not here"],
    "people_close": ["my family", "my friends", "everyone", "the people around me", "my {relative}", "my coworkers"],
    "sometimes": ["sometimes", "some nights", "a lot", "more and more", "lately", "every now and then", "often"],
    "feel_verb": ["feel", "have been feeling", "keep feeling", "just feel", "honestly feel", "constantly feel"],
    "always": [
        "all the time",
        "constantly",
        "every single day",
        "nonstop",
        "most of the day",
        "day after day",
        "no matter what",
        "from morning to night",
    ],
    "bleak": [
        "grey and pointless",
        "dark",
        "hopeless",
        "bleak",
        "heavy",
        "colourless",
        "like a weight",
        "like it's covered in fog",
        "flat and sad",
    ],
    "cry_when": [
        "almost every night",
        "in the shower so nobody hears",
        "on my way home from work",
        "for no reason at all",
        "whenever I'm alone",
        "every time I sit in my car",
        "before bed",
        "at my desk",
        "when nobody is looking",
        "in the bathroom at work",
        "during lectures",
    ],
    "cry_other": [
        "almost every night",
        "for no reason at all",
        "whenever they're alone",
        "after every phone call with their mom",
        "in the car",
        "most evenings",
    ],
    "weight": [
        "ten pounds",
        "five kilos",
        "almost 15 pounds",
        "a lot of weight",
        "eight kilos",
        "20 pounds",
        "six kilos",
        "a dress size",
        "two notches on my belt",
    ],
    "food_bit": [
        "a few crackers",
        "half a sandwich",
        "a piece of toast",
        "some rice",
        "a banana",
        "a yogurt",
        "a handful of cereal",
        "a cup of noodles",
    ],
    "late_hour": ["3am", "4 in the morning", "sunrise", "5am", "2am", "half past three", "4am", "dawn"],
    "early_hour": ["3am", "4am", "2am", "5am", "half past two", "4:30"],
    "hours": ["12", "14", "13", "15", "16", "eleven", "twelve"],
    "few": ["two", "three", "a couple of", "maybe four", "three or four"],
    "small_task": [
        "doing the dishes",
        "walking to the mailbox",
        "making a sandwich",
        "answering a text",
        "getting dressed",
        "taking out the trash",
        "folding laundry",
        "walking the dog",
        "a ten minute walk",
        "a quick grocery run",
        "vacuuming one room",
        "showering",
    ],
    "guilt_reason": [
        "letting my family down",
        "being so useless",
        "every mistake I've made",
        "how I treated my friends",
        "being this way",
        "wasting my parents' money",
        "ruining my relationship",
        "dropping out",
        "not visiting my grandma before she died",
    ],
    "guilt_obj": [
        "things I said years ago",
        "letting my parents pay my rent",
        "quitting my job",
        "not being there for my friend",
        "the fight with my brother",
        "failing my exams",
        "the way things ended with {name}",
        "missing my nephew's birthday",
    ],
    "good_thing": [
        "to be happy",
        "my friends",
        "any kindness",
        "a second chance",
        "my partner",
        "the help I'm getting",
        "to be loved",
        "this job",
        "nice things",
    ],
    "domain": [
        "work",
        "school",
        "being a parent",
        "being a friend",
        "my job",
        "life in general",
        "my relationship",
        "adulting",
    ],
    "role": [
        "son",
        "daughter",
        "friend",
        "girlfriend",
        "boyfriend",
        "employee",
        "parent",
        "partner",
        "brother",
        "sister",
        "student",
        "roommate",
    ],
    "n": ["five", "ten", "three", "six", "four"],
    "decision": [
        "what to eat",
        "what to wear",
        "which email to answer first",
        "what to buy at the store",
        "what to watch",
        "which bus to take",
        "what to reply to a text",
        "which form to fill in",
    ],
    "setting": ["class", "meetings", "lectures", "conversations", "work calls", "seminars", "standups"],
    "task": [
        "an email",
        "a TV episode",
        "my homework",
        "a single chapter",
        "a report",
        "a short article",
        "a simple form",
        "one level of a game",
    ],
    "job": [
        "a nurse",
        "a cashier",
        "a software developer",
        "a teacher",
        "a barista",
        "a warehouse worker",
        "a student",
        "an accountant",
        "an electrician",
        "a graphic designer",
        "a delivery driver",
        "a lab technician",
        "a chef",
        "an apprentice plumber",
        "a receptionist",
        "a line cook",
        "a bank teller",
        "a mechanic",
        "a call center agent",
        "a paralegal",
    ],
    "pet": ["puppy", "kitten", "rabbit", "parrot", "hamster", "rescue dog", "cat", "corgi", "gecko"],
    "skill": [
        "Spanish",
        "the ukulele",
        "to code",
        "pottery",
        "sign language",
        "to cook Thai food",
        "to drive stick",
        "Japanese",
        "woodworking",
        "to skate",
        "calligraphy",
    ],
    "course": [
        "Spanish",
        "pottery",
        "sign language",
        "Japanese",
        "woodworking",
        "web design",
        "bookkeeping",
        "first aid",
        "photography",
        "welding",
    ],
    "weather": ["rainy", "freezing", "weirdly warm", "grey", "windy", "sunny", "humid", "snowy"],
    "age": ["19", "22", "24", "27", "31", "35", "28", "40", "20", "33", "26", "45"],
    "age_small": ["six", "eight", "ten", "twelve", "fourteen"],
    "living": ["parents", "two roommates", "partner", "grandmother", "cat", "best friend", "sister"],
    "month": ["January", "March", "May", "August", "September", "October", "November", "April", "June"],
    "place": [
        "Lisbon",
        "the coast",
        "my aunt's cabin",
        "Japan",
        "the mountains",
        "Chicago",
        "a lake nearby",
        "Vegas",
        "Scotland",
        "the Outer Banks",
        "my grandparents' farm",
    ],
    "city": [
        "Denver",
        "Austin",
        "Toronto",
        "Manchester",
        "Seattle",
        "Melbourne",
        "Atlanta",
        "Dublin",
        "Phoenix",
        "Leeds",
    ],
    "season": ["summer", "spring", "winter", "autumn", "the holidays"],
    "weekday": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
    "genre": [
        "cooking shows",
        "documentaries",
        "old sitcoms",
        "anime",
        "true crime",
        "nature videos",
        "fantasy novels",
        "sci-fi",
        "horror movies",
    ],
    "minutes": ["20", "45", "30", "50", "15", "40", "25"],
    "show": ["that show", "the series everyone recommended", "the podcast", "that anime", "the reality show"],
    "food": ["pasta", "tacos", "ramen", "curry", "pizza", "a stir fry", "soup", "burritos", "chili", "dumplings"],
    "money": ["$200", "$150", "$1,200", "$400", "$3,000", "$80", "$600", "$5,000"],
    "years": ["two", "three", "five", "seven", "ten", "four", "six"],
    "subject": [
        "calc",
        "organic chem",
        "statistics",
        "history",
        "physics",
        "econ",
        "biology",
        "programming",
        "accounting",
        "psych 101",
        "linear algebra",
        "anatomy",
    ],
    "major": [
        "nursing",
        "computer science",
        "business",
        "psychology",
        "engineering",
        "art history",
        "biology",
        "education",
        "film",
    ],
    "year_student": ["freshman", "sophomore", "junior", "senior", "second year", "final year student", "grad student"],
    "club": ["chess", "hiking", "film", "debate", "climbing", "anime", "robotics", "photography"],
    "sport": ["football", "basketball", "volleyball", "softball", "five-a-side", "tennis", "hockey", "rugby"],
    "company_kind": [
        "logistics company",
        "startup",
        "hospital",
        "bank",
        "school district",
        "law firm",
        "grocery chain",
        "call center",
        "game studio",
    ],
    "app": ["Hinge", "Bumble", "Tinder", "a Discord server", "a running app", "a Facebook group"],
    "thing": ["bike", "guitar", "Switch", "camera", "PS4", "couch", "laptop"],
    "colour": ["dark green", "light blue", "off-white", "terracotta", "grey", "yellow"],
    "holiday": ["Thanksgiving", "Christmas", "Easter", "New Year", "Eid", "the long weekend"],
    "hours_big": ["300", "150", "500", "80", "1,000", "200"],
    "n_people": ["two", "three", "four", "five"],
    "stressor": ["money", "the move", "my exams", "the wedding", "my visa", "the job hunt", "my car", "my lease"],
    "who": [
        "My {relative}",
        "My friend {name}",
        "A guy in my class",
        "My {relative}'s husband",
        "A coworker of mine",
        "My {relative}'s girlfriend",
        "One of my roommates",
        "My old {relative}",
        "A friend of mine",
        "My {relative}'s best friend",
    ],
    "workplace": ["work", "my shift", "class", "the warehouse", "the office", "practice", "the restaurant"],
    "opener_time": [
        "Last week",
        "On {weekday}",
        "A few days ago",
        "Yesterday",
        "This morning",
        "Back in {month}",
        "Over the weekend",
        "Last night",
        "Earlier today",
        "The other day",
        "Two weeks ago",
    ],
}

# ---------------------------------------------------------------------------------------------
# Narrative clauses by topic: first person, no final punctuation (_Post.narrative makes them sentences).
TOPICS: dict[str, list[str]] = {
    "work": [
        "I work as {job} and most of my shifts are ten hours",
        "my manager moved our team meeting to {weekday} mornings",
        "we got a new hire last week and I've been training her",
        "I asked for a raise in {month} and they said maybe next quarter",
        "the coffee machine at work has been broken for a month",
        "I've been at this company for {years} years now",
        "my coworker {name} keeps taking credit for my spreadsheets",
        "there are rumours about layoffs after the merger",
        "I picked up an extra shift on {weekday} to cover for {name}",
        "our department is switching to a new scheduling system",
        "my performance review is coming up in {month}",
        "I had a job interview at a {company_kind} across town",
        "I spent most of {weekday} on a call with a client who wanted everything redone",
        "my boss said I'm up for a promotion if the budget gets approved",
        "we had a team lunch at the {food} place near the office",
        "I've been thinking about going back to freelancing",
        "the warehouse got a new conveyor system and nobody knows how it works",
        "my shift lead lets me pick my own hours, which is nice",
        "half the team is remote now so the office is really quiet",
        "I got written up once for being five minutes late",
        "I've been applying to jobs in {city} because the pay is better there",
        "a customer yelled at me over a coupon that expired in {month}",
        "our team hit its target for the quarter",
        "the new software at work crashes every time I export a file",
        "I'm the only one on my team who knows how the old database works",
        "they changed our uniforms again and the new ones are itchy",
        "I've been doing inventory counts every {weekday} night",
        "my boss wants everyone back in the office three days a week",
    ],
    "school": [
        "I'm a {year_student} studying {major}",
        "my {subject} midterm is on {weekday}",
        "I switched my major to {major} last semester",
        "my lab partner never shows up to the sessions",
        "the professor for {subject} posts the slides an hour before class",
        "I have a group project due in {few} weeks",
        "I live in the dorms this year with {n_people} other people",
        "I'm taking five classes this term plus a part-time job",
        "my TA said my essay was solid but needed more sources",
        "finals start in {few} weeks",
        "I applied for a scholarship that would cover half my tuition",
        "I got a B on my {subject} quiz",
        "the library closes at midnight during exam season",
        "my advisor wants me to pick a thesis topic by {month}",
        "I joined the {club} club at the start of the year",
        "the campus shuttle only runs every {minutes} minutes",
        "my parents really want me to go to grad school",
        "I'm thinking about transferring to a school closer to home",
        "we had a fire drill in the middle of my {subject} exam",
        "I'm retaking {subject} over the summer",
        "my roommate and I share a tiny desk by the window",
        "I tutor a couple of high schoolers in {subject} for extra money",
        "our {subject} professor grades on a curve",
        "I have an internship interview lined up for {month}",
    ],
    "family": [
        "my parents have been married for {years} decades",
        "my {relative} is moving back in with us for a while",
        "we do a big dinner at my grandma's every {weekday}",
        "my little brother just started high school",
        "my mom keeps asking when I'm going to visit",
        "my dad retired in {month} and now he's building a shed",
        "my {relative} and I haven't really talked since the wedding",
        "my family is planning a reunion at {place} next {season}",
        "my sister had a baby in {month}",
        "my parents are getting divorced after {years} years",
        "my grandpa is in the hospital with a broken hip",
        "my {relative} lent me money for the deposit",
        "we argue a lot about politics at the dinner table",
        "my cousin is getting married in {place}",
        "my parents want me to take over the family business",
        "I'm the oldest of four kids",
        "my stepdad and I get along better than I expected",
        "my mom calls me every {weekday} without fail",
        "we spent {holiday} at my aunt's house this year",
        "my dad still doesn't know how to use his phone",
        "my {relative} keeps sending me recipes on WhatsApp",
        "my parents are selling the house I grew up in",
    ],
    "relationship": [
        "I've been with my {partner} for {years} years",
        "my {partner} and I moved in together in {month}",
        "we had a big argument about money last weekend",
        "I started seeing someone I met on {app}",
        "my ex texted me out of nowhere on {weekday}",
        "we're planning a trip to {place} for our anniversary",
        "my {partner} wants to get a dog but our lease doesn't allow pets",
        "I've been on {n} first dates this month",
        "my {partner} works nights so we mostly see each other on weekends",
        "we broke up in {month} after {years} years together",
        "my {partner}'s parents are visiting for a week",
        "I think my {partner} is going to propose",
        "we've been doing long distance since {month}",
        "my {partner} surprised me with concert tickets",
        "we keep arguing about whose turn it is to do the dishes",
        "I met my {partner}'s friends for the first time",
        "my {partner} got a job offer in {city}",
        "we've been talking about getting married next {season}",
    ],
    "friends": [
        "my friend {name} is getting married in {month}",
        "a group of us used to play {sport} every {weekday}",
        "I went to {name}'s birthday party on {weekday}",
        "most of my friends from high school moved away",
        "me and {name} have been friends since we were {age_small}",
        "my group chat has been blowing up about the wedding",
        "we have a board game night once a month",
        "my best friend moved to {city} for work",
        "I helped {name} move apartments last weekend",
        "my friends want to do a road trip to {place}",
        "I haven't seen my college friends in about a year",
        "we went to a trivia night and came in second",
        "my friend {name} just got a new job at a {company_kind}",
        "{name} keeps sending me memes at work",
        "we're doing a secret santa this year",
        "my friends dragged me to karaoke on {weekday}",
    ],
    "money": [
        "my rent went up by {money} this year",
        "I've been trying to pay off {money} of credit card debt",
        "my car insurance renewal came in way higher than last year",
        "I finally made a budget spreadsheet",
        "my paycheck barely covers rent and groceries",
        "I have about {money} in savings",
        "I'm behind on my student loan payments",
        "I sold my old {thing} to cover the electric bill",
        "my landlord is keeping my deposit over a scratch on the floor",
        "I got a surprise tax bill from last year",
        "I've been picking up delivery shifts on weekends for extra cash",
        "we split the bills three ways in our apartment",
        "my phone plan is {money} a year, which is ridiculous",
        "I cancelled most of my subscriptions to save money",
        "my bank charged me an overdraft fee for being {money} short",
    ],
    "games": [
        "I've put about {hours_big} hours into {game}",
        "my friends and I play {game} most {weekday} nights",
        "I finally beat the last boss in {game}",
        "I'm saving up for a new graphics card",
        "the new update for {game} dropped last week",
        "I stayed up way too late on {weekday} finishing a raid in {game}",
        "I've been watching speedruns of {game} on YouTube",
        "I got my little brother into {game}",
        "my console started making a weird grinding noise",
        "I'm stuck on a puzzle in {game} and refuse to look it up",
        "our {game} team made it to the regional finals",
        "I preordered the new {game} expansion",
        "I built my own PC over the summer",
        "I've been trying to get into {game} because everyone at work plays it",
        "my save file in {game} got corrupted and I lost everything",
        "I've been streaming {game} to about six viewers",
    ],
    "health": [
        "I sprained my ankle playing {sport} in {month}",
        "I have a dentist appointment on {weekday}",
        "my doctor wants me to cut down on caffeine",
        "I got my flu shot at the pharmacy",
        "I have asthma, so winters are annoying",
        "I've been doing physical therapy for my knee",
        "I need new glasses but the optometrist is booked until {month}",
        "I had my wisdom teeth out last month",
        "my allergies have been terrible since the trees started blooming",
        "I started going to the gym three times a week",
        "I'm trying to drink more water",
        "I broke my wrist when I was {age_small} and it still clicks sometimes",
        "my blood test results came back normal",
        "I finally booked a physical after putting it off for years",
    ],
    "housing": [
        "I moved to {city} in {month}",
        "my apartment is a tiny studio above a bakery",
        "my upstairs neighbor plays the drums in the evenings",
        "our landlord finally fixed the heater",
        "I'm looking for a new place because my lease ends in {month}",
        "I share a house with {n_people} roommates",
        "the washing machine in our building has been broken for weeks",
        "I painted my bedroom {colour}",
        "we found mold behind the bathroom cabinet",
        "I'm moving back in with my parents to save money",
        "the new apartment is closer to work but much smaller",
        "I assembled an entire IKEA wardrobe by myself",
        "the wifi in our building drops out every evening",
        "our street has been dug up for a month for new pipes",
    ],
    "pets": [
        "I adopted a {pet} from the shelter in {month}",
        "my {pet} knocked a glass off the table this morning",
        "my dog needs surgery on his paw",
        "my {pet} has been napping on my laptop keyboard",
        "I take my dog to the park every morning before work",
        "my cat is twelve now and still acts like a kitten",
        "we're fostering {few} kittens for the shelter",
        "my {pet} ate a sock and we had to go to the vet",
        "the vet bill for my {pet} was {money}",
    ],
    "hobbies": [
        "I started learning {skill} on weekends",
        "I've been getting into {activity} this year",
        "I signed up for a {course} class at the community center",
        "I finished a 1000-piece puzzle last weekend",
        "I joined a running club that meets on {weekday}s",
        "I've been trying to grow tomatoes on my balcony",
        "I bought a secondhand {hobby_obj} online",
        "I go to an open mic night every other {weekday}",
        "I'm knitting a scarf for my {relative}",
        "I've been reading a lot of {genre}",
        "I've been watching a lot of {genre} with my {relative}",
        "I entered a local photo contest and got an honourable mention",
    ],
    "commute": [
        "my car failed its inspection",
        "the bus was late again this morning",
        "I bike to work when it's not raining",
        "I got a parking ticket outside my own building",
        "my car needs new tires before {season}",
        "there's construction on my route so the commute takes forever",
        "I finally got my driver's license at {age}",
        "the train was packed so I stood the whole way",
        "my commute is about {minutes} minutes each way",
        "someone backed into my car in the grocery store parking lot",
    ],
    "food": [
        "I made {food} for dinner last night",
        "I've been meal prepping on Sundays",
        "I tried a new {food} recipe from TikTok",
        "we ordered {food} and watched a movie",
        "my {relative} taught me how to make {food}",
        "there's a new {food} place opening on my street",
        "I burned the garlic bread again",
        "I'm trying to cook at home more instead of ordering out",
    ],
    "sport": [
        "I ran my first 10k in {month}",
        "my {sport} team lost in the semifinals",
        "I coach my nephew's {sport} team on {weekday}s",
        "we got season tickets this year",
        "I've been trying to get back into {sport}",
        "I went to a {sport} game with my {relative}",
    ],
    "bad_news": [
        "my car got broken into last month",
        "my grandma passed away in {month}",
        "I got laid off in {month} along with half my team",
        "my landlord is selling the building",
        "my {relative} was in a car accident but she's okay",
        "my visa renewal got delayed again",
        "my laptop died right before a deadline",
        "our basement flooded during the storm",
        "my {relative} lost their job in {month}",
        "my dog got sick and we had to put him down",
    ],
    "feelings": [
        "I feel so lucky to have {name} in my life",
        "I can't believe how fast this year went",
        "I'm so proud of my {relative} for finishing the marathon",
        "I've been anxious about the interview on {weekday}",
        "honestly I'm furious with my landlord",
        "I can't stand my coworker's music",
        "I feel like everything is finally coming together at work",
        "I got way too excited about the new {game} trailer",
        "I'm nervous about meeting my {partner}'s parents",
        "I feel bad that I forgot {name}'s birthday",
        "I was so annoyed that I nearly walked out of the meeting",
        "I'm kind of scared of driving on the highway",
        "I can't wait for {season}",
        "I feel weird about my {relative} moving so far away",
        "I'm honestly relieved the exam is over",
        "I miss my old neighborhood sometimes",
        "it made me so happy when the kids called",
        "I felt really awkward at the party",
        "I'm jealous of my friend's new apartment, not gonna lie",
        "I'm so frustrated with the visa office",
        "I feel like nobody at work reads my emails",
        "I get irrationally angry at slow walkers",
        "I felt nostalgic going through old photos",
        "I'm stressed about {stressor} but it's manageable",
        "I feel like I can't say no to my boss",
        "I was embarrassed when my card got declined",
        "I'm worried about my {relative}'s surgery next week",
        "I'm grateful my {relative} helped with the move",
        "everything about the wedding planning makes me nervous",
        "I can't decide if I'm excited or terrified about the move",
        "I feel like I'm always the one who organises everything",
        "I'm honestly a bit lonely since {name} moved away",
        "I hate that I care so much about what my boss thinks",
        "I'm so over this weather",
        "nothing beats a quiet Sunday morning",
        "I feel like I don't have anything in common with my coworkers",
    ],
    "weather": [
        "the weather here has been {weather} all week",
        "it's been {weather} for days",
        "we had a power outage during the storm",
        "it snowed in {month}, which never happens here",
    ],
}
# Narrative clauses that use symptom words in other senses ("the fridge is empty", "the printer died"). They
# are ordinary narrative (no rows), spread over all posts whatever their labels, so a word alone is weak evidence.
VOCAB_NOISE: list[str] = [
    "the fridge is empty again because nobody went shopping",
    "I'm so tired of my landlord's excuses",
    "the printer at work died in the middle of my report",
    "my phone was dead by the time I got to the station",
    "I was dying to tell {name} about it",
    "the new manager is killing it with the schedule",
    "that comedian absolutely killed it",
    "our team got crushed in the final",
    "my laptop battery drains in two hours now",
    "we drained the pasta and the whole kitchen filled with steam",
    "the hike was exhausting but the view was worth it",
    "I've exhausted every option with the insurance company",
    "the app is useless since the last update",
    "the coupon turned out to be worthless",
    "the power failure knocked out the whole block",
    "the referee was a joke",
    "I felt a bit guilty about eating the last slice of cake",
    "guilty pleasure, I've been watching {genre}",
    "I hate the new layout of the grocery store",
    "it wasn't anyone's fault, the pipe just burst",
    "the sad news is that the bakery on my street is closing",
    "it was a sad little birthday cake, but the kids loved it",
    "we went downtown for {food}",
    "I finally made the down payment on the car",
    "the tire pressure light says it's low",
    "the blue paint looked better on the sample card",
    "the heavy rain flooded the parking lot",
    "my {thing} is broken again",
    "I stayed up late to watch the match",
    "my {pet} sleeps on the warm laptop",
    "I slept on the couch at {name}'s place after the party",
    "we had a sleepover for my niece's birthday",
    "my laptop keeps going into sleep mode",
    "I woke up early to catch the sunrise at {place}",
    "I dreamed about the trip to {place}",
    "the town is sleepy on Sundays",
    "I can't focus the old camera properly",
    "we had a focus group at work about the new logo",
    "I forgot my umbrella again, typical",
    "I can't decide between the blue or the grey sofa",
    "my mind went blank on the last trivia question",
    "the wifi is so slow in the evenings",
    "traffic was moving at a snail's pace",
    "the crowd got restless before the band came on",
    "my nephew can't sit still in the car",
    "I pace myself on long runs now",
    "I'm hungry for a real vacation",
    "my company has no appetite for risk",
    "I binge-watched the whole season of {show} in a weekend",
    "I ate way too much at {name}'s barbecue",
    "I'm starving by the time my shift ends",
    "I put on my heavy winter coat for the first time this year",
    "my {pet} has a huge appetite",
    "we lost the game by one point",
    "I lost my keys for the third time this month",
    "I lost interest in {show} after the second season",
    "the movie was so boring I nearly fell asleep",
    "the end of the month is always tight with rent",
    "it's a dead-end road, so it's quiet",
    "the plants died while I was away",
    "my grandpa says hard work never killed anybody",
    "the deadline is killing everyone on my team",
    "the economy here has been depressed since the factory closed",
    "you have to keep the button depressed to reset the router",
    "I'm hopeless at cooking, but I keep trying",
    "my handwriting is a disaster",
    "I feel like a new person after a haircut",
    "the fog was so thick on the highway this morning",
    "my brain hurts from the tax forms",
    "we were all drained after moving the couch up four floors",
    "my {relative} was exhausted after the flight, so we just ordered {food}",
    "I'm terrible at parallel parking",
    "I failed my driving test the first time, like everyone",
    "the burden of proof is on the landlord, apparently",
    "nobody wants to be a burden on moving day, so we hired a van",
    "the empty apartment next door finally got rented",
    "I was low on cash until payday",
    "the mood at the office was great after the bonus",
    # common words of the evidence pools in everyday use
    "we used to live near the beach",
    "I used to work at a pizza place in high school",
    "my {relative} used to drive a truck",
    "there's nothing good on TV on {weekday}s",
    "we didn't have anything planned for the weekend",
    "they don't make that cereal anymore",
    "I really enjoy the walk to work when it's sunny",
    "my favourite coffee place changed its menu",
    "we usually eat dinner around seven",
    "I'm trying to eat more vegetables",
    "my {relative} is eating healthier since the doctor's visit",
    "the baby finally sleeps through the night",
    "I went to bed early before the trip",
    "the night bus takes forever",
    "I'll rest my knee for a few days",
    "the rest of the week is packed",
    "the body shop quoted me {money} for the bumper",
    "our energy bill doubled this winter",
    "the shower in our building has no water pressure",
    "my {pet} takes a nap in the sun every afternoon",
    "I taught myself {skill} from YouTube videos",
    "I feel like the new manager is actually pretty nice",
    "everyone at work got a gift card for the holidays",
    "compared to last year, rent is insane",
    "I don't mind the commute, I listen to podcasts",
    "it's a simple recipe but it tastes great",
    "I follow a few cooking channels",
    "I want to finish the bathroom tiles before {month}",
    "I've been thinking about getting a bike",
    "I keep thinking about that trip to {place}",
    "I want to visit {place} next {season}",
    "it would be nice to have a bigger kitchen",
    "things are better at work since the reorg",
    "people keep asking me for the recipe",
    "I had a feeling it would rain",
    "the box was so heavy we needed two people",
    "I don't know why the bus is always late on {weekday}s",
    "I stayed awake for the whole movie for once",
    "I can't wait to sleep in on Saturday",
    "we stayed up talking until midnight",
    "the kids were so tired after the zoo",
    "I'm tired of paying for parking",
    "I lost weight in my wallet after the vet bill, lol",
    "I gained a new appreciation for my mom's cooking",
    "I hate waiting in line at the post office",
    "I feel so lucky that the tickets were still available",
    "I can't concentrate when the neighbors are drilling",
    "my focus at the gym is legs this month",
    "I forget where I parked at least once a week",
    "the whole team felt the pressure before the launch",
    "I have zero interest in golf, but my {relative} loves it",
    "I finally stopped caring what people think of my car",
    "I failed to get tickets for the concert",
    "my old phone is completely useless now",
    "I always feel like I'm forgetting something when I travel",
    "I felt a bit empty-handed showing up without a gift",
    "I'm a terrible cook but my {partner} is great",
    "the guilt trip from my mom about visiting is real",
    "the movie ending was kind of depressing",
    "I'm not a morning person at all",
    "the party was dead until the music started",
    "my {relative} is always tired after night shifts, it's part of the job",
]
TOPIC_WEIGHTS: dict[str, float] = {
    "work": 3,
    "school": 2.5,
    "family": 2.5,
    "relationship": 2.5,
    "friends": 2,
    "money": 1.5,
    "games": 1.5,
    "health": 1,
    "housing": 1.5,
    "pets": 1,
    "hobbies": 1.5,
    "commute": 1,
    "food": 1,
    "sport": 1,
    "bad_news": 1.5,
    "weather": 0.5,
    "feelings": 2.5,
}
CONNECTORS = [
    ", and ",
    ", but ",
    ", so ",
    " and ",
    ", plus ",
    " while ",
    ", and then ",
    ", although ",
    ", even though ",
    ", meanwhile ",
    ", and on top of that ",
    ", and honestly ",
]

# Reddit asides, whole sentences.
ASIDES: list[str] = [
    "Throwaway account because people I know use this site.",
    "Long time lurker, first time posting.",
    "Sorry for the long post.",
    "On mobile, so sorry for the formatting.",
    "Not sure if this is the right subreddit for this.",
    "Any advice would be appreciated.",
    "Thanks for reading this far.",
    "Has anyone else dealt with something like this?",
    "Edit: fixed a typo.",
    "Edit: thanks for all the replies, I'm reading every one.",
    "I don't really know how to start this.",
    "Anyway, that's where I'm at right now.",
    "Idk.",
    "Some context first.",
    "Bit of background.",
    "Okay so.",
    "Here goes.",
    "I'll try to keep this short.",
    "Where do I even begin.",
    "Anyway.",
    "That's it, that's the post.",
    "I just needed to write this down somewhere.",
    "Does that make sense?",
    "I'm rambling, sorry.",
    "Back to the point.",
    "So yeah.",
    "Whatever.",
    "Ugh.",
    "Lol.",
    "English isn't my first language, sorry for mistakes.",
    "Please be nice.",
    "Wall of text incoming.",
    "I'm not looking for pity, just perspective.",
    "What would you do?",
    "Am I overreacting?",
    "I know this is a lot.",
    "Anyway, rant over.",
    "Sorry, I know this jumps around a lot.",
]
SHORT_NEUTRAL: list[str] = [
    "Anyone else?",
    "Just needed to vent.",
    "Happy Friday everyone.",
    "Need advice.",
    "Update: it went fine.",
    "Title says it all.",
    "Good morning from Ohio.",
    "Is this normal?",
    "Long day.",
    "Made it through finals!",
    "Thank you all so much.",
    "Any book recommendations?",
    "First post here.",
    "Just checking in.",
    "Got the job!",
    "Rough week.",
    "What helps you?",
    "Wish me luck tomorrow.",
]

# ---------------------------------------------------------------------------------------------
# Status-1 evidence: clause cores per symptom (first person, present, no final punctuation). Cores are
# fused with openers, tails and topic clauses by _evidence_sentence.
EVIDENCE: dict[str, list[str]] = {
    "DEPRESSED_MOOD": [
        "I {feel_verb} {sad} {time}",
        "I've been feeling {sad} {since} and I can't shake it",
        "every morning I wake up with this {heavy} feeling in my chest before anything has even happened",
        "I {cry_verb} {cry_when}",
        "there's a {sad_noun} that follows me around everywhere I go",
        "everything feels {bleak} {time}",
        "I put on a smile for {people_close} but inside I feel {sad}",
        "I haven't felt happy in {duration}",
        "it's like a {cloud} settled over everything and won't lift",
        "I keep tearing up over nothing, like commercials or a song on the radio",
        "my chest feels hollow and {heavy} {always}",
        "I honestly can't remember the last time I felt okay",
        "I feel like I'm drowning and nobody notices",
        "I'm just so {sad} {always} and I don't even know why",
        "the {sad_noun} is the worst part, it's there when I wake up and when I go to bed",
        "I sat in my car in the parking lot for twenty minutes just crying",
        "some days the {sad_noun} is so bad I just lie on the {couch}",
        "I've been in a really dark place {since}",
        "nothing is even wrong on paper, but I feel {sad}",
        "I'm sick of feeling this {sad} {always}",
        "it feels like someone turned the colour down on my whole life",
        "I've been depressed {since} and it keeps getting worse",
        "my mood has been in the gutter {time}",
        "I walk around like a ghost in my own life",
        "I {cry_verb} the second I get home",
        "there's this constant {sad_noun} that I can't explain",
        "I end up sobbing into my pillow {nights}",
        "I feel like I'm carrying a {cloud} nobody else can see",
        "the {sad_noun} hits hardest on Sunday evenings",
        "it's been one long bad day for about {duration}",
        "I'm barely holding it together, I could {cry_verb} at any moment",
        "I feel {sad} in a way I can't put into words",
        "I keep getting these waves of {sad_noun} out of nowhere",
        "it's like there's a {cloud} parked over my head",
        "my heart feels {heavy} {always}",
        "I feel like I'm stuck at the bottom of a well",
        "the {sad_noun} doesn't lift, not even on good days",
        "I can't picture anything good in my future anymore",
        "I get a lump in my throat every time someone asks how I'm doing",
        "my mood is just {sad} {always}",
        "I wake up and the first thing I feel is {sad_noun}",
        "I've been so {sad} that I {cry_verb} at work",
        "everything is tinted grey for me {time}",
        "I'm in a hole and I can't see the top anymore",
        "my {relative} asked why I look so unhappy all the time and I didn't have an answer",
        "I spent the whole weekend with the curtains shut feeling {sad}",
        "life just feels {bleak}",
        "I'm so unhappy {time} that it physically hurts",
    ],
    "ANHEDONIA": [
        "I was obsessed with {activity} once, but now I {lost_interest} it",
        "nothing interests me, not even {activity}",
        "I haven't touched my {hobby_obj} in {duration} because it just feels {pointless}",
        "{activity} was my favourite thing and now it feels {pointless}",
        "I don't enjoy anything anymore",
        "my friends invite me out and I just can't bring myself to care",
        "even {treat} doesn't do anything for me now",
        "I bought {game} on sale and uninstalled it after twenty minutes because I felt nothing",
        "I go through the motions but there's {no_joy} in any of it",
        "I don't get excited about anything, not even {event}",
        "things that once lit me up feel {pointless}",
        "I quit {activity} because I stopped caring",
        "I have zero interest in sex or dating",
        "I scroll through my games library and nothing looks fun",
        "hanging out with people means nothing to me now",
        "I just sit there instead of doing the things I loved",
        "I feel nothing when I do the stuff I would have looked forward to a year ago",
        "there's {no_joy} in anything for me",
        "my {hobby_obj} is collecting dust because nothing appeals to me",
        "even when something good happens I don't feel anything",
        "music was my whole life and now I don't even bother putting my headphones on",
        "I went to the concert I'd been waiting for all year and felt completely flat",
        "food, games, friends, none of it does anything for me",
        "I can't remember the last time I looked forward to something",
        "my {relative} asked what I wanted for my birthday and I couldn't think of a single thing I'd enjoy",
        "I put on my favourite show and just stare through it",
        "it's like the {joy} has been sucked out of everything",
        "I {lost_interest} all my hobbies, they seem {pointless} now",
        "I played {game} for hours every day last year and now I can't be bothered to open it",
        "I was the one planning every night out and now I just don't see the point",
        "I sold my {hobby_obj} because I haven't wanted to touch it in {duration}",
        "nothing feels rewarding, not even finishing something I worked hard on",
        "I can't feel excited about the trip even though I paid for it months ago",
        "I read a book a week before all this and now nothing holds any appeal",
        "I {lost_interest} {activity} and basically everything else",
        "I get {no_joy} from {activity} these days",
        "my friends talk about stuff they're into and I realise I'm not into anything",
        "I counted down the days to {event} every year and now I barely notice them",
        "I open {game} and close it again because it's just not fun",
        "I've gone numb to everything I loved",
        "nothing sparks anything in me, not music, not people, not food",
        "I can't think of one thing I actually want to do",
        "I can't {care} anything, not {activity}, not {treat}",
        "my weekends are just me staring at a screen because nothing feels worth doing",
    ],
    "APPETITE_CHANGE": [
        "I've barely been eating {since}, I just have no {hunger}",
        "I've {dropped} {weight} without trying",
        "I've {gained} {weight} because I eat whenever I feel bad",
        "{meals} has no taste to me and I skip most of it",
        "I can go a whole day without eating and not even notice",
        "I {overeat} {nights} and I can't stop",
        "my {hunger} is completely gone {time}",
        "I force down {food_bit} a day just so I don't pass out",
        "I've been stress eating so much that none of my jeans fit",
        "I keep forgetting to eat and I've gotten really thin",
        "my clothes hang off me because I barely eat",
        "I've {gained} {weight} in the last couple of months from comfort eating",
        "I only eat once a day now, if that",
        "the thought of {meals} makes me feel sick",
        "I can't stop snacking and the scale keeps going up",
        "I ordered takeout {n} times this week and ate all of it alone on the {couch}",
        "my {relative} keeps commenting on how much weight I've lost",
        "I stand in front of the open fridge and nothing seems edible",
        "I'm eating way more than usual, mostly junk",
        "I've been living on coffee and maybe a granola bar",
        "I'll eat an entire family-size bag of chips without noticing",
        "I'm never hungry anymore",
        "{meals} feels like a chore I have to force myself through",
        "I've {dropped} {weight} since this started because I just don't feel like eating",
        "I eat until I feel sick and then do it again the next night",
        "I {not_hungry} {time}",
        "I {overeat} {time} and I've {gained} {weight}",
        "everything tastes like cardboard so I mostly don't bother with {meals}",
        "my jeans are loose now because I {not_hungry}",
        "I keep finding myself in the kitchen at midnight eating whatever is there",
        "I haven't had a proper meal in days",
        "my weight has gone up {weight} {since} from eating junk to cope",
        "my {hunger} has just vanished and I've {dropped} {weight}",
        "I can't stop grazing on sugar and carbs {time}",
    ],
    "SLEEP_ISSUES": [
        "I can't fall asleep until {late_hour} {nights}",
        "I wake up at {early_hour} every night and lie there until my alarm",
        "I've been sleeping {hours} hours a day and still want more",
        "my insomnia is so bad that I'm lucky to get {few} hours",
        "I'm {awake} for hours {nights} with my mind racing",
        "I sleep through most of the day {time}",
        "I just stare at the ceiling all night",
        "I've been oversleeping and missing my alarms",
        "I haven't had a full night's sleep in {duration}",
        "some nights I don't sleep at all",
        "I stay in bed until the afternoon most days",
        "my sleep is completely messed up {time}",
        "I keep waking up every hour through the night",
        "I watch the sky get light through my window before I finally pass out",
        "even with melatonin I can't stay asleep",
        "I crash for {hours} hours straight on weekends and wake up feeling worse",
        "I hear the first birds every morning because I'm still {awake}",
        "my nights are basically me scrolling on my phone until {late_hour}",
        "I nap for hours after class and then I'm up all night",
        "I'm in bed by 8pm and still can't get up in the morning",
        "my sleep schedule is wrecked, I'm up all night and out cold all day",
        "I've been getting maybe {few} hours a night {since}",
        "I jolt awake at {early_hour} with my heart pounding and that's it for the night",
        "my alarm goes off and it feels like I only just closed my eyes",
        "I've started sleeping through entire weekends",
        "I toss and turn until {late_hour} and then drag myself to {workplace}",
        "I can't remember the last time I slept through the night",
        "drifting off takes me hours {time}",
        "I wake up way too early every morning and can't drift back off",
        "my brain switches on the second my head hits the pillow and won't shut up until {late_hour}",
        "I {sleepless} {nights}",
        "I {sleepless} until {late_hour} {nights}",
        "I {oversleep} {time} and it's still never enough",
        "my sleep is all over the place, some nights nothing and some days I {oversleep}",
        "I've seen {late_hour} on my phone clock more times this month than I can count",
        "my bed is basically where I spend my whole day now, out cold or half conscious",
    ],
    "PSYCHOMOTOR": [
        "I can't sit still, I keep pacing around my room {time}",
        "my {relative} says I move and talk much slower than I used to",
        "I'm so {restless} that I'm constantly fidgeting",
        "everything I do feels like moving through mud, even my speech has slowed down",
        "people at work have {noticed} how slow I am to respond and move",
        "I keep tapping my feet and wringing my hands, I can't calm my {body} down",
        "I pace the kitchen for hours because I can't stay in one place",
        "my whole body has slowed down, it takes me forever to get across a room",
        "my speech has gotten so slow that people finish my sentences for me",
        "I can't stop bouncing my leg and picking at my skin",
        "I get up and sit down over and over because I'm so {restless}",
        "my {relative} {noticed} that I've been pacing and fidgeting nonstop",
        "I sit in the same spot for hours barely moving, and people have started to notice",
        "my movements feel {slowed}, and my {relative} has {noticed} it too",
        "my hands won't stay still, I keep clicking my pen until people stare",
        "friends keep asking why I talk so slowly now",
        "I feel like I'm in slow motion while everyone else is on fast forward",
        "I keep getting up in the middle of meetings because I physically can't stay seated",
        "my {relative} asked if I was okay because I took ages to answer a simple question",
        "I've been shuffling around the house like an old man",
        "there's this buzzing restlessness in my {body} that makes me walk laps around the block",
        "my teacher asked why I was fidgeting so much in class",
        "I type so slowly now that my coworkers have {noticed}",
        "I rock back and forth on the {couch} without realising it",
        "I {pace} {always} and people have started pointing it out",
        "my {body} feels {slowed}, every movement takes forever",
        "I'm so {restless} I can't get through a TV episode without getting up five times",
        "my {relative} says I look like I'm moving through water",
        "people keep telling me to stop fidgeting",
        "I talk so slowly now that people think I'm drunk",
        "I can't keep my {body} still, I {pace} until my {relative} asks me to stop",
        "my reactions are so {slowed} that I nearly missed my stop twice this week",
    ],
    "FATIGUE": [
        "I'm {tired} {always}, even after a full night's sleep",
        "I have {no_energy} to do anything {time}",
        "just taking a shower wipes me out for the rest of the day",
        "I feel drained from the moment I wake up",
        "I'm so {tired} that {small_task} feels impossible",
        "my {body} feels {heavy} and worn out {time}",
        "I come home from {workplace} and {collapse} on the {couch} with {no_energy}",
        "everything takes so much effort that I give up halfway",
        "my {body} feels {heavy} by lunchtime",
        "I need a nap after {small_task}",
        "I'm running on fumes every single day",
        "it's like my battery never charges past ten percent",
        "climbing the stairs to my apartment leaves me completely spent",
        "I'm too {tired} to cook so I just lie there",
        "I can barely drag myself through a shift",
        "I'm physically {tired} {time} for no reason",
        "even small chores leave me wiped for hours",
        "I've got nothing left in the tank by noon",
        "I sit in the car for ten minutes after {workplace} because I can't find the {energy} to walk inside",
        "my whole {body} aches with tiredness {time}",
        "I did double shifts a year ago and now half a shift flattens me",
        "I'm constantly worn out no matter how much I lie down",
        "brushing my teeth feels like running a marathon",
        "I keep cancelling plans because I just have {no_energy}",
        "I have to sit down halfway through the shower because I'm so fatigued",
        "some days I can't even lift my arms to wash my hair",
        "I have zero stamina, a walk to the shop knocks me out",
        "my {energy} is just gone",
        "by three in the afternoon I'm basically a zombie",
        "I feel like I'm dragging a sack of bricks around all day",
        "I feel {tired} {always}",
        "{small_task} leaves me {tired} for hours",
        "I'm {tired} by the time I've gotten dressed",
        "I have {no_energy} {time}, even on my days off",
        "my {body} just won't cooperate, I'm {tired} {always}",
        "I have to psych myself up for twenty minutes just to get off the {couch}",
    ],
    "WORTHLESSNESS": [
        "I feel completely {worthless} {time}",
        "I'm {worthless}, I can't do anything right",
        "I {hate_self} for {guilt_reason}",
        "I feel so guilty about {guilt_obj} that I can't let it go",
        "I'm a burden to {people_close} and I know it",
        "everyone around me has their life together and I'm just dead weight",
        "I don't {deserve} {good_thing}",
        "I look in the mirror and all I see is a {failure}",
        "whenever something goes wrong I know it's {fault}",
        "I'm a disappointment to everyone who ever believed in me",
        "I feel like a fraud at {domain} and it's only a matter of time before they figure it out",
        "I'm just not good enough, for anyone or anything",
        "I keep replaying every stupid thing I've ever said and cringing at myself",
        "I can't forgive myself for {guilt_reason}",
        "I'm the reason everything fell apart with {name}",
        "I bring nothing to the table, not at work and not with my friends",
        "deep down I believe I'm {worthless}",
        "I'm pathetic, {age} and still can't manage basic adult stuff",
        "the guilt eats at me every single day",
        "I always feel like I'm letting {people_close} down just by being around",
        "my {relative} says I'm too hard on myself but I really am {worthless}",
        "compared to my friends I've accomplished nothing and I'm ashamed of it",
        "I feel like I'm the problem in every relationship I've ever had",
        "I'm terrible at my job and everyone can see it",
        "I'm a terrible {role}",
        "I keep apologising for everything because I feel like I'm always in the way",
        "I feel so ashamed of who I've become",
        "I don't see anything good in myself at all",
        "I ruin everything I touch",
        "I'm convinced my friends only put up with me out of pity",
        "every compliment feels like a lie because I know I'm not worth it",
        "I'm a {failure} and I drag everyone down with me",
        "I {hate_self} {always}",
        "I feel {guilt} about {guilt_obj} {always}",
        "I'm {worthless} and everyone would see it if they looked closely",
        "I feel like a {failure} compared to my {relative}",
        "I keep telling myself I'm {worthless}, and I believe it",
        "I'm the worst {role} anyone could have",
        "I mess up everything and it's always {fault}",
    ],
    "COGNITIVE_ISSUES": [
        "I {focus_bad} {time}",
        "I {reread} the same {page} {n} times and nothing sticks",
        "my {brain} is so {fog} that I forget what I was saying mid-sentence",
        "I can't make even simple decisions like {decision}",
        "I keep zoning out in {setting} and missing everything",
        "my focus is completely gone and my grades are slipping",
        "I freeze whenever I have to choose anything",
        "my {brain} feels {fog} {always}",
        "I can't think straight anymore",
        "I forget things constantly, like appointments and where I put my keys",
        "studying is impossible because I can't keep my {brain} on it",
        "at work I stare at my screen and can't process anything",
        "I keep losing my train of thought",
        "I was sharp once but now I can't follow a simple conversation",
        "I spend an hour deciding {decision} and still can't pick",
        "my memory has gotten so bad that I write everything down and still forget",
        "I walk into rooms and have no idea why I'm there",
        "I {reread} every {page} five times because the words just slide off my {brain}",
        "I missed a deadline because I couldn't string two thoughts together",
        "it takes me forever to make sense of things that were easy a year ago",
        "I keep making dumb mistakes at work because I can't focus",
        "I can't follow the plot of a TV show anymore",
        "I can't focus long enough to finish {task}",
        "my {brain} feels {fog} {time}",
        "I {focus_bad} in {setting} and my notes make no sense afterwards",
        "I {focus_bad} long enough to finish {task}",
        "my thoughts are so {fog} that I can't decide {decision}",
        "I forgot my own phone number when someone asked for it",
        "people ask me simple questions and my {brain} just goes blank",
        "I start a sentence and halfway through I have no idea where it was going",
    ],
    "SUICIDAL_THOUGHTS": [
        "I {think_about} {ending_it} {time}",
        "{sometimes} I wish I could go to sleep and never wake up",
        "I've been having thoughts of killing myself {since}",
        "I don't want to be alive anymore",
        "I think about {death} constantly",
        "{people_close} would be better off if I was {gone}",
        "I've looked up ways to end it more than once",
        "part of me wants to just disappear for good",
        "I wouldn't mind if I didn't wake up tomorrow",
        "the idea of {death} feels like a relief {time}",
        "I keep picturing my own funeral and feeling calm about it",
        "I wrote a note last week and then tore it up",
        "I don't see the point in living anymore",
        "I've been standing on the bridge near my place thinking about jumping",
        "when I drive I {sometimes} think about swerving into a wall",
        "I've started giving away my stuff because I don't think I'll need it",
        "I just want everything to stop, permanently",
        "I made a plan and that scares me",
        "I keep a bottle of pills in my drawer just in case",
        "I've been researching how many pills it would take",
        "I'm not sure how much longer I can keep going",
        "I keep telling myself my {relative} would get over it eventually if I was {gone}",
        "some nights I sit with a knife and think about it",
        "if I got hit by a bus tomorrow I honestly wouldn't be upset",
        "it would be so easy to end it all",
        "I just want to stop existing",
        "I've had suicidal thoughts {since}",
        "I'm scared of what I might do to myself",
        "the only way out I can see is to not be here anymore",
        "I've been saying goodbye to people in my head",
        "I tried to take my own life a while ago and the urges are back",
        "I want to {end_it}",
        "{sometimes} I really want to {end_it}",
        "I {think_about} {ending_it} {nights}",
        "I'd rather {end_it} than keep feeling like this",
        "I don't think I'll be around much longer",
        "I keep wondering who would find me",
    ],
}
# Evidence for posts of a few words: whole sentences.
SHORT_EVIDENCE: dict[str, list[str]] = {
    "DEPRESSED_MOOD": [
        "Everything feels empty.",
        "So sad today.",
        "Feeling hopeless again.",
        "Crying again.",
        "I feel so empty.",
    ],
    "ANHEDONIA": ["Nothing is fun anymore.", "I don't enjoy anything.", "Nothing interests me."],
    "APPETITE_CHANGE": ["Haven't eaten in days.", "Not hungry ever.", "Can't stop binge eating."],
    "SLEEP_ISSUES": ["Can't sleep.", "Awake again at 4am.", "Can't sleep again.", "Slept 14 hours again."],
    "PSYCHOMOTOR": ["Can't sit still.", "Pacing all night again."],
    "FATIGUE": ["So tired.", "No energy at all.", "Exhausted all the time."],
    "WORTHLESSNESS": ["I hate myself.", "I'm worthless.", "I'm such a failure."],
    "COGNITIVE_ISSUES": ["Can't focus at all.", "My brain is fog."],
    "SUICIDAL_THOUGHTS": ["I want to die.", "I don't want to live.", "I want it to end."],
}
# Openers and tails, used at the same rates (OPENER_RATE, TAIL_RATE) for evidence and narrative sentences, so
# that none of them marks evidence.
OPENERS = [
    "Honestly ",
    "Honestly, ",
    "And ",
    "But ",
    "Also ",
    "On top of that, ",
    "The thing is, ",
    "To be honest ",
    "Idk, ",
    "The worst part is ",
    "I guess ",
    "If I'm being real, ",
    "Plus ",
    "Meanwhile ",
    "At this point ",
    "Not gonna lie, ",
    "So yeah, ",
    "Truthfully ",
    "I think ",
    "Funny thing is, ",
    "Oh and ",
    "Basically ",
    "Like, ",
    "Anyway, ",
]
TAILS = [
    " and it's getting worse",
    " and I don't know what to do",
    ", it's been like this for a while",
    " tbh",
    " if that makes sense",
    " and nobody really knows",
    ", which doesn't help",
    " and I hate it",
    ", and I'm not sure why",
    " lol",
    ", not gonna lie",
    ", for what it's worth",
    " I guess",
    ", to be fair",
    ", which is a whole other story",
    " and it's stressing me out",
    ", so that's fun",
]
# {ctx}: a topic clause of the post, {ev}: the evidence core.
CONTEXT_FRAMES = [
    "{ctx}, and {ev}",
    "{ctx}, but {ev}",
    "{ev}, even though {ctx}",
    "{ctx} and {ev}",
    "{ev}, and on top of that {ctx}",
    "{ctx}, meanwhile {ev}",
    "{ev} while {ctx}",
    "{ctx}, and honestly {ev}",
    "{ev}, plus {ctx}",
    "{ctx}, so {ev}",
]

# One sentence, two symptoms (both rows share the sentence_id), used when both are present.
COMBOS: dict[tuple[str, str], list[str]] = {
    ("FATIGUE", "COGNITIVE_ISSUES"): [
        "I'm so exhausted that I can't think straight {time}",
        "I'm too drained to focus on anything",
        "I'm so tired all the time that my brain feels foggy",
        "I'm so wiped out that I keep losing my train of thought",
    ],
    ("DEPRESSED_MOOD", "WORTHLESSNESS"): [
        "I feel {sad} and worthless most of the day",
        "I'm miserable and I hate myself for it",
        "I feel so sad and guilty {time}",
        "I cry a lot and it's mostly because I feel like such a failure",
    ],
    ("SLEEP_ISSUES", "FATIGUE"): [
        "I barely sleep and I'm exhausted all day",
        "I sleep {hours} hours and still wake up drained",
        "I can't sleep at night and I have no energy during the day",
        "I'm awake until {late_hour} and then a zombie all day",
    ],
    ("DEPRESSED_MOOD", "ANHEDONIA"): [
        "I feel empty and nothing I used to enjoy matters anymore",
        "I'm so {sad} that even {activity} doesn't interest me anymore",
    ],
    ("DEPRESSED_MOOD", "SUICIDAL_THOUGHTS"): [
        "I feel so hopeless that I think about dying",
        "I'm so {sad} that I don't want to be alive anymore",
    ],
    ("WORTHLESSNESS", "SUICIDAL_THOUGHTS"): [
        "I'm worthless and I think everyone would be better off if I was dead",
        "I'm such a burden that I keep thinking the world would be better without me",
    ],
    ("APPETITE_CHANGE", "DEPRESSED_MOOD"): [
        "I'm too {sad} to eat and I've lost {weight}",
    ],
}

# ---------------------------------------------------------------------------------------------
# Hard negatives by kind. Never a label; about half get a status-0 row.
NEGATIONS: dict[str, list[str]] = {
    "SLEEP_ISSUES": [
        "I never had trouble sleeping, I'm out as soon as my head hits the pillow",
        "my sleep is actually fine {time}",
        "I sleep a solid eight hours most nights",
        "I don't have any problems falling asleep",
        "sleep has never been a problem for me",
        "weirdly I'm sleeping better than ever",
        "I don't {sleepless} or anything, sleep is fine",
    ],
    "FATIGUE": [
        "I'm not {tired} at all these days",
        "I've actually got plenty of energy {time}",
        "I don't feel {tired}, just bored",
        "physically I feel fine and I have lots of energy",
        "I'm not {tired}, I actually have plenty of energy",
        "my energy levels are honestly great",
    ],
    "APPETITE_CHANGE": [
        "my appetite is totally normal",
        "I'm eating normally and my weight hasn't changed",
        "I haven't lost my appetite or anything",
        "I eat three meals a day and my appetite is fine",
    ],
    "DEPRESSED_MOOD": [
        "I'm not {sad} about it, just annoyed",
        "I don't feel depressed, I'm mostly stressed about money",
        "I'm not sad about the move, if anyone is wondering",
        "I don't feel hopeless, just frustrated with the paperwork",
        "I'm not depressed or anything",
        "I don't feel {sad}, just busy",
    ],
    "ANHEDONIA": [
        "I still love {activity} and do it every weekend",
        "I still enjoy {activity} as much as ever",
        "I haven't lost interest in my hobbies at all",
        "I haven't lost interest in {activity}, it's still the best part of my week",
    ],
    "WORTHLESSNESS": [
        "I don't think I'm {worthless}, I just made a mistake",
        "I don't feel guilty about leaving that job",
        "I know I'm good at what I do",
        "I don't feel worthless at all, I know what I bring to the table",
        "I don't {hate_self} over it, it was one bad day",
    ],
    "COGNITIVE_ISSUES": [
        "I can concentrate fine at work",
        "my focus is actually better than ever",
        "I have no trouble making decisions",
        "I can concentrate just fine {time}",
    ],
    "SUICIDAL_THOUGHTS": [
        "I would never hurt myself, just to be clear",
        "I'm not suicidal or anything like that",
        "I've never had thoughts of ending my life",
        "to be clear, I'm not having any dark thoughts",
    ],
    "PSYCHOMOTOR": [
        "nobody has noticed anything different about how I move or talk",
        "I'm not {restless} or fidgety at all",
    ],
}
# Third person, completed by "{who} ...".
OTHER_PERSON: dict[str, list[str]] = {
    "SLEEP_ISSUES": [
        "can't sleep at night {time}",
        "has insomnia and is up until {late_hour}",
        "sleeps until noon every day",
        "wakes up at {early_hour} and can't get back to sleep",
        "hasn't slept properly in weeks",
        "can't fall asleep until {late_hour} {nights}",
    ],
    "FATIGUE": [
        "is {tired} from working double shifts",
        "has {no_energy} {time}",
        "is wiped out all the time since starting chemo",
        "gets tired just walking up the stairs",
        "is completely drained after every shift",
        "is {tired} {always}",
    ],
    "DEPRESSED_MOOD": [
        "has been feeling really down {since}",
        "cries {cry_other}",
        "seems so {sad} {time}",
        "told me they feel hopeless",
        "has been depressed for years",
        "feels {sad} {time}",
    ],
    "WORTHLESSNESS": [
        "says they feel {worthless}",
        "blames themselves for everything",
        "keeps calling themselves {worthless}",
        "feels {guilt} about everything",
    ],
    "APPETITE_CHANGE": [
        "stopped eating much after the breakup",
        "has lost {weight} and barely eats",
        "has been binge eating since losing their job",
        "has no appetite {time}",
    ],
    "ANHEDONIA": [
        "has lost interest in {activity}",
        "doesn't enjoy anything anymore",
        "stopped caring about the things they used to love",
    ],
    "COGNITIVE_ISSUES": [
        "can't focus on anything since the new baby",
        "keeps forgetting things and can't make decisions",
        "can't concentrate in class {time}",
    ],
    "SUICIDAL_THOUGHTS": [
        "told me they've had thoughts of suicide, and I'm scared for them",
        "keeps talking about ending their life",
        "tried to kill themselves last year",
    ],
    "PSYCHOMOTOR": [
        "paces around the house all night",
        "can't sit still and keeps fidgeting",
        "moves and talks so slowly {time} that we're worried",
    ],
}
OTHER_PERSON_TAILS = [
    "",
    "",
    "",
    " and I don't know how to help",
    ", which worries me",
    " and I've been checking on them",
    ", so I've been helping out more",
]
# Recovered past episodes: "{past}, I ..., but <recovery>".
PAST: dict[str, list[str]] = {
    "SLEEP_ISSUES": [
        "couldn't sleep for weeks",
        "couldn't fall asleep until {late_hour}",
        "slept fourteen hours a day",
    ],
    "DEPRESSED_MOOD": ["was really depressed for a while", "cried almost every night", "felt {sad} all the time"],
    "APPETITE_CHANGE": ["lost a lot of weight", "stopped eating and lost {weight}", "binge ate every night"],
    "FATIGUE": ["felt {tired} all the time", "had {no_energy} at all"],
    "ANHEDONIA": ["lost interest in everything", "lost interest in {activity}"],
    "SUICIDAL_THOUGHTS": ["had dark thoughts about dying", "thought about ending my life"],
    "WORTHLESSNESS": ["hated myself", "felt {worthless}"],
    "COGNITIVE_ISSUES": ["couldn't focus in class", "couldn't concentrate on anything"],
    "PSYCHOMOTOR": ["was so restless I paced all day"],
}
RECOVERY = [
    "but that's completely behind me now",
    "but therapy helped and that episode ended",
    "but I've been fine for a long time",
    "but I haven't felt that way in years",
    "but I'm back to normal now",
    "but that passed once I changed jobs",
    "but it's been years",
    "but those days are over",
]
# General remarks about the topic, not about the writer.
GENERAL: dict[str, list[str]] = {
    "SLEEP_ISSUES": ["I read that insomnia is really common in students", "they say blue light wrecks your sleep"],
    "FATIGUE": ["my doctor said fatigue can be a sign of low iron", "apparently new parents are exhausted for a year"],
    "DEPRESSED_MOOD": [
        "depression runs in my family, so I try to keep an eye on it",
        "our HR sent around a leaflet about depression at work",
    ],
    "SUICIDAL_THOUGHTS": [
        "there's a suicide hotline number on the back of our student cards",
        "we watched a documentary about suicide prevention in class",
    ],
    "APPETITE_CHANGE": ["I read that binge eating is more common than people think"],
    "COGNITIVE_ISSUES": ["apparently everyone's attention span is shot from phones"],
    "WORTHLESSNESS": ["my therapist friend says guilt is a useless emotion"],
    "ANHEDONIA": ["I saw a video about how dopamine affects motivation"],
    "PSYCHOMOTOR": ["fidget toys are weirdly popular at my office"],
}
OTHER_SENSE: dict[str, list[str]] = {
    "FATIGUE": [
        "I'm sick and tired of the rain here",
        "my legs are exhausted after leg day, but it's a good kind of sore",
        "my phone battery is drained by lunchtime",
        "the car battery was completely dead this morning",
        "we drained the pool for the winter",
        "the hike was exhausting but totally worth the view",
    ],
    "SLEEP_ISSUES": [
        "I can't sleep on planes, so I'm bringing a good book for the flight",
        "I was up all night at my friend's wedding and it was a blast",
        "my laptop keeps going to sleep during downloads",
        "I slept on the decision and felt better about it",
        "my foot fell asleep during the meeting",
        "the town is so sleepy on Sundays",
    ],
    "COGNITIVE_ISSUES": [
        "I couldn't focus on the movie because the guy behind me kept talking",
        "the camera wouldn't focus in the dark",
        "I can't decide between the blue or the grey sofa, both look great",
        "I forgot my umbrella today, typical",
    ],
    "WORTHLESSNESS": [
        "I feel guilty for skipping the gym today, lol",
        "these old coins turned out to be worthless",
        "I feel a bit guilty about eating the last slice of cake",
        "that stock became worthless overnight",
    ],
    "APPETITE_CHANGE": [
        "I'm starving, lunch can't come soon enough",
        "I lost my appetite for horror films after that last one",
        "I have a big appetite for true crime podcasts",
        "my company has no appetite for risk",
        "my {pet} has a huge appetite and eats everything",
    ],
    "SUICIDAL_THOUGHTS": [
        "this exam is going to be the death of me, haha",
        "that comedian absolutely killed it last night",
        "this traffic is killing me",
        "I'd die for a good bowl of {food} right now",
        "my plants died while I was on vacation",
    ],
    "DEPRESSED_MOOD": [
        "I felt a little sad when the season finale ended",
        "the housing market is depressed right now, so we're waiting to sell",
        "you have to keep the button depressed for ten seconds to reset the router",
        "the economy in my town has been depressed since the factory closed",
        "I'm hopeless at cooking, but I enjoy trying new recipes",
        "the movie had a sad ending but it was great",
    ],
    "PSYCHOMOTOR": [
        "the kids were restless on the long drive",
        "the dog paces by the door when it wants a walk",
        "my internet has been so slow {since}",
        "I bought a fidget toy for my nephew",
    ],
    "ANHEDONIA": [
        "I lost interest in {show} after the second season",
        "I've lost interest in politics, it's all noise",
    ],
}
HARD_KINDS = ("negation", "other_person", "past", "general", "other_sense")
HARD_KIND_WEIGHTS = (0.15, 0.15, 0.1, 0.1, 0.5)

SPECIAL_CASE: list[str] = [
    "I was diagnosed with depression a couple of years ago",
    "my therapist thinks I might have bipolar disorder",
    "I've been on antidepressants since {month}",
    "my psychiatrist changed my medication last month",
    "I was diagnosed with MDD in {month}",
    "my GP put me on sertraline",
]

EXPLANATIONS_POSITIVE: dict[str, list[str]] = {
    "DEPRESSED_MOOD": [
        "The writer describes persistent sadness or emptiness, consistent with depressed mood.",
        "Ongoing tearfulness and low mood point to DSM-5 criterion A1, depressed mood.",
        "The sentence expresses hopelessness and sadness most of the day.",
    ],
    "ANHEDONIA": [
        "The writer reports lost interest or pleasure in activities they used to enjoy.",
        "Loss of enjoyment across activities matches anhedonia, DSM-5 criterion A2.",
        "The sentence shows markedly diminished interest in things that used to matter.",
    ],
    "APPETITE_CHANGE": [
        "The writer describes a clear change in appetite or weight.",
        "Eating much less or much more than usual fits DSM-5 criterion A3.",
    ],
    "SLEEP_ISSUES": [
        "The writer describes insomnia or sleeping far too much.",
        "Persistent trouble sleeping or oversleeping matches DSM-5 criterion A4.",
    ],
    "PSYCHOMOTOR": [
        "Restlessness or slowed movement noticeable to others fits psychomotor change.",
        "The sentence describes agitation or slowing that others can observe, DSM-5 criterion A5.",
    ],
    "FATIGUE": [
        "The writer reports constant tiredness and loss of energy.",
        "Exhaustion after minimal effort matches fatigue, DSM-5 criterion A6.",
    ],
    "WORTHLESSNESS": [
        "The writer expresses feelings of worthlessness or excessive guilt.",
        "Harsh self-blame and feeling like a failure match DSM-5 criterion A7.",
        "The sentence shows a strongly negative view of self.",
    ],
    "COGNITIVE_ISSUES": [
        "The writer describes trouble concentrating, thinking or deciding.",
        "Poor focus and indecisiveness match DSM-5 criterion A8.",
    ],
    "SUICIDAL_THOUGHTS": [
        "The writer expresses thoughts of death or suicide.",
        "Recurrent thoughts about dying or ending one's life match DSM-5 criterion A9.",
    ],
}
EXPLANATIONS_NEGATIVE: dict[str, str] = {
    "negation": "The sentence mentions the topic but denies having the problem.",
    "other_person": "The sentence describes someone else, not the writer.",
    "past": "The sentence describes a past episode that the writer says is over.",
    "general": "The sentence talks about the topic in general, not about the writer.",
    "other_sense": "The key word is used in an unrelated sense, not as a symptom.",
}
EXPLANATION_SPECIAL = "The sentence mentions a diagnosis or treatment rather than a specific DSM-5 symptom."

# Word and phrase variants applied to evidence and hard-negative sentences (each occurrence changes with
# SYNONYM_RATE), so that the same meaning comes in many wordings: a bag of words has to see each of them.
SYNONYMS: dict[str, list[str]] = {
    "nothing": ["nothing", "zero", "not a thing"],
    "anything": ["anything", "a single thing"],
    "everything": ["everything", "every single thing"],
    "interests": ["interests", "grabs", "appeals to"],
    "enjoy": ["enjoy", "like", "love", "get a kick out of"],
    "obsessed with": ["obsessed with", "crazy about", "hooked on"],
    "favourite": ["favourite", "favorite", "go-to"],
    "jeans": ["jeans", "trousers", "pants", "clothes"],
    "loose": ["loose", "baggy", "too big"],
    "ceiling": ["ceiling", "wall", "dark"],
    "fidgeting": ["fidgeting", "squirming", "twitching", "fiddling with stuff"],
    "pacing": ["pacing", "walking back and forth", "wandering around", "roaming"],
    "talk": ["talk", "speak"],
    "laps": ["laps", "circles", "loops"],
    "buzzing": ["buzzing", "humming", "crawling"],
    "restlessness": ["restlessness", "agitation", "jitteriness"],
    "drained": ["drained", "depleted", "sapped"],
    "halfway": ["halfway", "midway", "partway"],
    "stamina": ["stamina", "endurance"],
    "marathon": ["marathon", "triathlon", "full workout"],
    "nap": ["nap", "lie-down", "siesta"],
    "ashamed": ["ashamed", "embarrassed", "mortified"],
    "everyone": ["everyone", "everybody", "all of them"],
    "friends": ["friends", "mates", "buddies"],
    "memory": ["memory", "recall"],
    "deadline": ["deadline", "due date", "appointment"],
    "thoughts": ["thoughts", "ideas"],
    "tomorrow": ["tomorrow", "tonight", "in my sleep"],
    "chest": ["chest", "stomach", "heart"],
    "grey": ["grey", "gray", "colourless", "washed out"],
    "lift": ["lift", "go away", "clear", "budge"],
    "mood": ["mood", "headspace", "spirits"],
    "unhappy": ["unhappy", "miserable", "low"],
    "life": ["life", "world", "days"],
    "crying": ["crying", "sobbing", "weeping", "in tears"],
    "cry": ["cry", "sob", "weep"],
    "tired": ["tired", "weary", "worn"],
    "exhausted": ["exhausted", "shattered", "spent"],
    "energy": ["energy", "strength", "drive"],
    "heavy": ["heavy", "leaden", "weighed down"],
    "couch": ["couch", "sofa"],
    "hate": ["hate", "loathe", "despise", "can't stand"],
    "failure": ["failure", "flop", "disappointment"],
    "guilty": ["guilty", "awful", "horrible"],
    "can't focus": ["can't focus", "can't concentrate", "can't pay attention"],
    "forget": ["forget", "lose track of", "blank on"],
    "brain": ["brain", "head"],
    "alive": ["alive", "here", "living", "around"],
    "kill myself": ["kill myself", "end myself", "take my life"],
    "pills": ["pills", "tablets", "meds"],
    "bridge": ["bridge", "overpass", "roof of my building"],
    "funeral": ["funeral", "memorial"],
    "anymore": ["anymore", "these days", "any longer", "now"],
    "honestly": ["honestly", "genuinely", "seriously", "truly"],
    "constantly": ["constantly", "always", "nonstop"],
    "really": ["really", "super", "so", "pretty"],
    "completely": ["completely", "totally", "utterly", "entirely"],
    "just": ["just", "simply"],
    "every single day": ["every single day", "every day", "daily", "day in day out"],
    "can't": ["can't", "cannot", "can't", "can't even"],
    "don't": ["don't", "do not", "dont"],
    "I'm": ["I'm", "I am", "Im"],
    "feels": ["feels", "seems"],
    "people": ["people", "folks"],
    "at work": ["at work", "at my job", "on the job"],
    "get home": ["get home", "get back", "walk in the door"],
    "lately": ["lately", "recently", "as of late", "these past weeks"],
    "all day": ["all day", "the whole day"],
    "the point": ["the point", "any reason", "the purpose"],
    "fun": ["fun", "enjoyable", "entertaining"],
    "happy": ["happy", "good", "content", "glad"],
    "okay": ["okay", "ok", "alright", "fine"],
    "stupid": ["stupid", "dumb", "idiotic"],
    "terrible": ["terrible", "awful", "horrible", "lousy"],
    "mistakes": ["mistakes", "errors", "screwups"],
    "pathetic": ["pathetic", "embarrassing", "sad"],
    "burden": ["burden", "drain", "nuisance"],
    "mess": ["mess", "wreck", "disaster"],
    "snacking": ["snacking", "munching", "grazing", "nibbling"],
    "binge": ["binge", "overeat", "gorge"],
    "fridge": ["fridge", "pantry", "cupboard"],
    "junk": ["junk", "fast food", "sweets"],
    "awake": ["awake", "up", "conscious"],
    "alarm": ["alarm", "alarm clock", "phone alarm"],
    "pillow": ["pillow", "sheets"],
    "insomnia": ["insomnia", "sleeplessness"],
    "slowly": ["slowly", "sluggishly"],
    "slow": ["slow", "sluggish"],
    "fidget": ["fidget", "squirm", "twitch"],
    "my mind": ["my mind", "my brain", "my head"],
    "sleep": ["sleep", "rest", "shut-eye"],
    "worthless": ["worthless", "useless", "good-for-nothing"],
    "hopeless": ["hopeless", "bleak", "despairing"],
    "empty": ["empty", "hollow", "blank"],
    "sad": ["sad", "down", "low", "blue"],
    "eat": ["eat", "have a meal"],
    "weight": ["weight", "pounds", "kilos"],
    "hungry": ["hungry", "peckish"],
    "decide": ["decide", "choose", "make up my mind"],
    "focus": ["focus", "attention", "concentration"],
    "die": ["die", "be dead", "not exist"],
    "death": ["death", "dying", "the end"],
    "ending": ["ending", "finishing", "stopping"],
    "wake up": ["wake up", "come to", "open my eyes"],
    "thinking about": ["thinking about", "considering", "dwelling on", "mulling over"],
    "think about": ["think about", "consider", "dwell on", "mull over"],
    "want to": ["want to", "wanna", "wish to"],
    "would be": ["would be", "would be", "'d be"],
    "keep": ["keep", "continue"],
}
_SYN_RE = re.compile(
    r"(?<![\w'])(" + "|".join(re.escape(k) for k in sorted(SYNONYMS, key=len, reverse=True)) + r")(?![\w'])"
)
_SLOT_RE = re.compile(r"\{(\w+)\}")


def _fill(template: str, rng: random.Random) -> str:
    """Fill every {slot} (slot values may hold slots themselves, filled in turn)."""

    def one(m: re.Match) -> str:
        value = rng.choice(SLOTS[m.group(1)])
        return _SLOT_RE.sub(one, value) if "{" in value else value

    return _SLOT_RE.sub(one, template)


def _vary(text: str, rng: random.Random) -> str:
    """Replace each SYNONYMS key in ``text`` with a random variant (with probability SYNONYM_RATE)."""

    def one(m: re.Match) -> str:
        return rng.choice(SYNONYMS[m.group(1)]) if rng.random() < SYNONYM_RATE else m.group(1)

    return _SYN_RE.sub(one, text)


def _cap(text: str) -> str:
    return text[0].upper() + text[1:]


def _lower_first(text: str) -> str:
    """Lower-case the first letter unless the first word is 'I' (I, I'm, I've ...) or a capitalised name."""
    first = text.split(" ", 1)[0]
    if first == "I" or first.startswith("I'") or first in SLOTS["name"] or first in ("TikTok", "IKEA"):
        return text
    return text[0].lower() + text[1:]


def _dress(clause: str, rng: random.Random) -> str:
    """The clause with an opener (OPENER_RATE) and a tail (TAIL_RATE)."""
    if rng.random() < OPENER_RATE:
        clause = rng.choice(OPENERS) + _lower_first(clause)
    if rng.random() < TAIL_RATE:
        clause += rng.choice(TAILS)
    return clause


def _sentence(clause: str, end: str = ".") -> str:
    return _cap(clause) + end


# ---------------------------------------------------------------------------------------------
# quotas


def _round(x: float) -> int:
    return int(math.floor(x + 0.5))


def _assign_symptoms(n_posts: int, rng: random.Random) -> list[list[str]]:
    """Symptom lists for ``n_posts`` posts with quota counts (see the module docstring)."""
    counts = {s: min(n_posts, _round(n_posts * REAL_COUNTS[s] / REAL_POSTS)) for s in SYMPTOMS}
    n_none = _round(n_posts * REAL_NONE / REAL_POSTS)
    tokens = [s for s in SYMPTOMS for _ in range(counts[s])]
    n_sym = min(n_posts - n_none, len(tokens))
    rng.shuffle(tokens)
    posts: list[list[str]] = [[s] for s in tokens[:n_sym]]
    # The first n_sym tokens may repeat a symptom; the rest are extras for posts that lack it.
    by_first: dict[str, list[int]] = {s: [] for s in SYMPTOMS}
    for i, p in enumerate(posts):
        by_first[p[0]].append(i)
    for sym in tokens[n_sym:]:
        groups = [s for s in SYMPTOMS if s != sym and by_first[s]]
        weights = [AFFINITY.get((s, sym), AFFINITY.get((sym, s), 1.0)) * len(by_first[s]) for s in groups]
        placed = False
        for _ in range(30 if groups else 0):
            group = by_first[rng.choices(groups, weights=weights, k=1)[0]]
            post = posts[group[rng.randrange(len(group))]]
            if sym not in post and len(post) < 4:
                post.append(sym)
                placed = True
                break
        if not placed:  # fall back to the first post that lacks it (tiny or saturated sets)
            for post in posts:
                if sym not in post:
                    post.append(sym)
                    break
    posts += [[] for _ in range(n_posts - len(posts))]
    rng.shuffle(posts)
    return [[s for s in SYMPTOMS if s in p] for p in posts]


def _target_lengths(n_posts: int, rng: random.Random) -> list[int]:
    """Stratified lognormal word targets: one draw per 1/n quantile band, in shuffled order."""
    dist = NormalDist(math.log(LENGTH_MEDIAN), LENGTH_SIGMA)
    bands = list(range(n_posts))
    rng.shuffle(bands)
    out = []
    for b in bands:
        u = min(max((b + rng.random()) / n_posts, 1e-12), 1 - 1e-12)
        out.append(min(MAX_WORDS, max(MIN_WORDS, _round(math.exp(dist.inv_cdf(u))))))
    return out


# ---------------------------------------------------------------------------------------------
# sentences


def _weighted(rng: random.Random, items, weights):
    return rng.choices(items, weights=weights, k=1)[0]


def _poisson(rng: random.Random, lam: float) -> int:
    if lam > 30:  # normal approximation keeps very long posts fast
        return max(0, _round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


class _Post:
    """State of one post while it is written: its topics and the sentences it already holds."""

    def __init__(self, rng: random.Random, n_topics: int):
        self.rng = rng
        names = list(TOPICS)
        weights = [TOPIC_WEIGHTS[t] for t in names]
        self.topics: list[str] = []
        while len(self.topics) < n_topics:
            t = _weighted(rng, names, weights)
            if t not in self.topics:
                self.topics.append(t)
        self.used: set[str] = set()  # membership only, never iterated (output must not depend on hash order)
        self.labelled: list[str] = []

    def unique(self, make, labelled: bool = False) -> str:
        """A new sentence from ``make()``. No sentence repeats in a post, and a labelled sentence is no part of
        another sentence (nor the reverse, among labelled ones), so it occurs exactly once in the text."""
        for _ in range(60):
            text = make()
            if text in self.used or any(lab in text for lab in self.labelled):
                continue
            if labelled:
                if any(text in lab for lab in self.labelled):
                    continue
                self.labelled.append(text)
            self.used.add(text)
            return text
        raise RuntimeError("generator ran out of distinct sentences")  # pragma: no cover

    def topic(self) -> str:
        # the first topic dominates; the others come and go
        if len(self.topics) == 1 or self.rng.random() < 0.5:
            return self.topics[0]
        return self.rng.choice(self.topics[1:])

    def clause(self, topic: str | None = None) -> str:
        if self.rng.random() < VOCAB_NOISE_RATE:
            return _fill(self.rng.choice(VOCAB_NOISE), self.rng)
        return _fill(self.rng.choice(TOPICS[topic or self.topic()]), self.rng)

    def narrative(self, topic: str) -> str:
        rng = self.rng

        def make() -> str:
            r = rng.random()
            if r < COMPOUND_RATE:
                clause = self.clause(topic) + rng.choice(CONNECTORS) + _lower_first(self.clause())
            elif r < COMPOUND_RATE + 0.15:
                clause = _fill(rng.choice(SLOTS["opener_time"]), rng) + " " + _lower_first(self.clause(topic))
            else:
                clause = self.clause(topic)
            return _sentence(_dress(clause, rng))

        return self.unique(make)

    def evidence(self, core_template: str) -> str:
        rng = self.rng

        def make() -> str:
            core = _vary(_fill(core_template, rng), rng)
            if rng.random() < CONTEXT_RATE:
                frame = rng.choice(CONTEXT_FRAMES)
                text = frame.format(ctx=_lower_first(self.clause()), ev=_lower_first(core))
            else:
                text = _dress(core, rng)
            return _sentence(text, "..." if rng.random() < 0.05 else ".")

        return self.unique(make, labelled=True)

    def hard_negative(self, present: list[str]) -> tuple[str, str, str]:
        """(kind, symptom, sentence); negations and recovered-past claims only about absent symptoms."""
        rng = self.rng
        picked: list[tuple[str, str]] = []

        def make() -> str:
            kind = _weighted(rng, HARD_KINDS, HARD_KIND_WEIGHTS)
            sym = rng.choice([s for s in SYMPTOMS if kind not in ("negation", "past") or s not in present])
            picked.append((kind, sym))
            if kind == "negation":
                return _sentence(_fill(rng.choice(NEGATIONS[sym]), rng))
            if kind == "other_person":
                return _sentence(
                    _fill(rng.choice(SLOTS["who"]), rng)
                    + " "
                    + _fill(rng.choice(OTHER_PERSON[sym]), rng)
                    + rng.choice(OTHER_PERSON_TAILS)
                )
            if kind == "past":
                return _sentence(
                    _fill(rng.choice(SLOTS["past"]), rng)
                    + ", I "
                    + _fill(rng.choice(PAST[sym]), rng)
                    + ", "
                    + rng.choice(RECOVERY)
                )
            pool = GENERAL if kind == "general" else OTHER_SENSE
            return _sentence(_fill(rng.choice(pool[sym]), rng))

        sent = self.unique(lambda: _vary(make(), rng), labelled=True)
        return picked[-1][0], picked[-1][1], sent


def _paragraphs(sentences: list[str], rng: random.Random) -> list[list[int]]:
    """Indices of ``sentences`` grouped into paragraphs of 2-8 sentences (one paragraph if short)."""
    if len(sentences) <= 5:
        return [list(range(len(sentences)))]
    out, i = [], 0
    while i < len(sentences):
        k = rng.randint(2, 8)
        out.append(list(range(i, min(i + k, len(sentences)))))
        i += k
    return out


def _post(index: int, present: list[str], target: int, rng: random.Random, stats: dict) -> tuple[str, str, list]:
    """One post: (post_id, text, annotation rows as tuples in ANNOTATIONS_HEADER order)."""
    post_id = f"g_{index:04d}_{rng.randint(1, 999)}"
    post = _Post(rng, n_topics=min(5, 1 + int(target // WORDS_PER_TOPIC) + (rng.random() < 0.3)))
    # blocks of labelled sentences, each kept together: [(sentence, [(symptom, status, explanation), ...]), ...]
    blocks: list[list[tuple[str, list]]] = []
    short = target < SHORT_POST_WORDS

    if short:
        for sym in present:
            sent = post.unique(lambda sym=sym: rng.choice(SHORT_EVIDENCE[sym]), labelled=True)
            blocks.append([(sent, [(sym, 1, rng.choice(EXPLANATIONS_POSITIVE[sym]))])])
    else:
        remaining = list(present)
        for pair, templates in COMBOS.items():
            if pair[0] in remaining and pair[1] in remaining and rng.random() < COMBO_RATE:
                sent = post.evidence(rng.choice(templates))
                blocks.append([(sent, [(s, 1, rng.choice(EXPLANATIONS_POSITIVE[s])) for s in pair])])
                remaining = [s for s in remaining if s not in pair]
        for sym in remaining:
            cores = list(EVIDENCE[sym])
            # passages about the symptom: more of them in longer posts, each 1-3 sentences
            for _ in range(1 + _poisson(rng, min(PASSAGES_EXTRA_MAX, target / WORDS_PER_EXTRA_PASSAGE))):
                size = 1 + sum(rng.random() < r for r in PASSAGE_GROWTH)
                block = []
                for _ in range(min(size, len(cores))):
                    core = cores.pop(rng.randrange(len(cores)))
                    block.append((post.evidence(core), [(sym, 1, rng.choice(EXPLANATIONS_POSITIVE[sym]))]))
                if block:
                    blocks.append(block)
        # hard negatives: negations and recovered-past claims only about symptoms the writer does not show
        for _ in range(_poisson(rng, HARD_NEGATIVES_BASE + target * HARD_NEGATIVES_PER_WORD)):
            kind, sym, sent = post.hard_negative(present)
            stats["hard_negatives"][kind] += 1
            rows = [(sym, 0, EXPLANATIONS_NEGATIVE[kind])] if rng.random() < STATUS0_RATE else []
            blocks.append([(sent, rows)])
        if rng.random() < SPECIAL_CASE_RATE:
            sent = post.unique(lambda: _sentence(_fill(rng.choice(SPECIAL_CASE), rng)), labelled=True)
            blocks.append([(sent, [("SPECIAL_CASE", 1, EXPLANATION_SPECIAL)])])

    # narrative: paragraphs about the post's topics until the target length is reached
    words = sum(len(s.split()) for block in blocks for s, _ in block)
    narrative: list[str] = []
    if short:
        if not blocks:
            narrative.append(post.unique(lambda: rng.choice(SHORT_NEUTRAL)))
    else:
        if rng.random() < 0.3:
            narrative.append(post.unique(lambda: rng.choice(ASIDES)))
            words += len(narrative[-1].split())
        topic = post.topic()
        while words < target:
            if rng.random() < 0.25:
                topic = post.topic()
            sent = post.unique(lambda: rng.choice(ASIDES)) if rng.random() < 0.04 else post.narrative(topic)
            narrative.append(sent)
            words += len(sent.split())
    # each block goes to a uniformly random position among the narrative sentences
    units: list[list[tuple[str, list]]] = [[(s, [])] for s in narrative]
    for block in blocks:
        units.insert(rng.randint(0, len(units)), block)
    order = [item for unit in units for item in unit]

    parts, starts, pos = [], [], 0
    for para in _paragraphs([s for s, _ in order], rng):
        if parts:
            parts.append("\n\n")
            pos += 2
        for j, i in enumerate(para):
            if j:
                parts.append(" ")
                pos += 1
            starts.append(pos)
            parts.append(order[i][0])
            pos += len(order[i][0])
    text = "".join(parts)
    spans = split_sentences(text)
    index_of = {s: i for i, (s, _) in enumerate(spans)}
    rows = []
    for (sent, labels), start in zip(order, starts):
        if not labels:
            continue
        i = index_of.get(start)
        if i is None or spans[i] != (start, start + len(sent)) or text.count(sent) != 1:  # pragma: no cover
            raise RuntimeError(f"generator bug: sentence {sent!r} is not one sentence of post {post_id}")
        for sym, status, expl in labels:
            rows.append((post_id, f"{post_id}_{i}", sent, sym, status, expl))
    stats["sentences"] += len(spans)
    return post_id, text, rows


def generate(out_dir, n_posts: int = 800, seed: int = 13) -> dict:
    """Write posts.csv, annotations.csv and README.md into ``out_dir``; return statistics.

    Same ``(n_posts, seed)`` -> byte-identical files. The statistics hold the realised
    per-symptom post counts, hard-negative kinds, row counts, sentences and the word-length
    distribution (mean, p50, p95, min, max of ``len(text.split())``).
    """
    if n_posts < 1:
        raise ValueError(f"n_posts must be positive, got {n_posts}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    stats: dict = {
        "generator_version": GENERATOR_VERSION,
        "n_posts": n_posts,
        "seed": seed,
        "no_symptom": 0,
        "per_symptom": dict.fromkeys(SYMPTOMS, 0),
        "hard_negatives": dict.fromkeys(HARD_KINDS, 0),
        "annotation_rows": {"status_1": 0, "status_0": 0},
        "special_case_rows": 0,
        "sentences": 0,
    }
    present_lists = _assign_symptoms(n_posts, rng)
    targets = _target_lengths(n_posts, rng)
    posts, annotations = [], []
    for i, (present, target) in enumerate(zip(present_lists, targets), start=1):
        post_id, text, rows = _post(i, present, target, rng, stats)
        posts.append((post_id, text))
        annotations.extend(rows)
        for sym in present:
            stats["per_symptom"][sym] += 1
        stats["no_symptom"] += not present
    for row in annotations:
        stats["annotation_rows"]["status_1" if row[4] == 1 else "status_0"] += 1
        stats["special_case_rows"] += row[3] == "SPECIAL_CASE"
    words = sorted(len(t.split()) for _, t in posts)
    stats["words"] = {
        "mean": round(sum(words) / len(words), 1),
        "p50": words[len(words) // 2],
        "p95": words[min(len(words) - 1, int(0.95 * len(words)))],
        "min": words[0],
        "max": words[-1],
    }
    _write_csv(out / "posts.csv", POSTS_HEADER, posts)
    _write_csv(out / "annotations.csv", ANNOTATIONS_HEADER, annotations)
    (out / "README.md").write_text(
        _README.format(n=n_posts, seed=seed, version=GENERATOR_VERSION), encoding="utf-8", newline="\n"
    )
    return stats


def _write_csv(path: Path, header, rows) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
        writer.writerow(header)
        writer.writerows(rows)
    tmp.replace(path)


_README = """# Synthetic ReDSM5-format data (not real posts)

Generated by workflow_lib/data/synthetic.py (generator version {version}) with
n_posts={n}, seed={seed}. Every post is synthetic: first-person narratives built
from sentence templates with slot fillers, written to look like Reddit posts. No
real person wrote them.

posts.csv:        post_id, text
annotations.csv:  post_id, sentence_id, sentence_text, DSM5_symptom, status, explanation

Same format as ReDSM5 (Bao, Perez, Parapar, CIKM 2025), and shaped like it: the
share of posts per symptom follows the real set's counts, post lengths follow a
lognormal (about 300 words on average, a few posts of a handful of words, a long
tail into the thousands), and evidence sentences sit anywhere in a post. Status-1
sentences occur verbatim in their posts. Status-0 rows mark hard negatives that were
considered and rejected (negations, other people, recovered past episodes, general
remarks, other word senses). Use it to run and test the pipeline; results on it say
nothing about real data.
"""
