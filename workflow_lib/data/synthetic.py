"""The embedded data set: synthetic Reddit-style posts in exactly ReDSM5's CSV format.

The real ReDSM5 cannot be downloaded from these machines, so the default pipeline
trains on posts generated here. They are made to be *learnable but not trivial*:

* all nine DSM-5 symptoms, imbalanced like the real set (DEPRESSED_MOOD and
  WORTHLESSNESS in roughly 35-40 % of posts, PSYCHOMOTOR and APPETITE_CHANGE in
  5-8 %), about a quarter of the posts without any symptom;
* 3-9 sentences per post; every status-1 evidence sentence occurs verbatim in its
  post; a sentence may carry two symptoms (two rows, one sentence_id);
* dozens of templates with slot fillers per symptom, so the same symptom is said in
  many ways;
* hard negatives that share the symptoms' vocabulary - negations ("I'm not tired
  at all these days"), other people ("my sister can't sleep"), past / recovered
  episodes, and the same words in other senses ("the housing market is depressed",
  "my phone battery is drained", "I lost my appetite for horror films"). Some of
  them carry status-0 rows (considered and rejected), as in the real set;
* neutral filler about daily life; a few SPECIAL_CASE rows.

Labels follow the templates exactly (no random label noise). Output is
byte-identical for the same ``(n_posts, seed)``: one ``random.Random(seed)``, lists
only (no set or hash order). Bump ``GENERATOR_VERSION`` whenever output changes.
"""
from __future__ import annotations

import csv
import random
import re
from pathlib import Path

from workflow_lib.symptoms import SYMPTOMS

GENERATOR_VERSION = "1"

POSTS_HEADER = ("post_id", "text")
ANNOTATIONS_HEADER = ("post_id", "sentence_id", "sentence_text", "DSM5_symptom", "status", "explanation")

# Target share of posts showing each symptom (over all posts) and of posts with none.
TARGET_RATES: dict[str, float] = {
    "DEPRESSED_MOOD": 0.36,
    "ANHEDONIA": 0.17,
    "APPETITE_CHANGE": 0.062,
    "SLEEP_ISSUES": 0.16,
    "PSYCHOMOTOR": 0.058,
    "FATIGUE": 0.16,
    "WORTHLESSNESS": 0.34,
    "COGNITIVE_ISSUES": 0.13,
    "SUICIDAL_THOUGHTS": 0.18,
}
NO_SYMPTOM_RATE = 0.25
HARD_NEGATIVE_POST_RATE = 0.7      # posts that get 1-2 hard-negative sentences
STATUS0_RATE = 0.5                 # hard negatives that also get a status-0 row
COMBO_RATE = 0.35                  # pairs of present symptoms expressed by one sentence
SECOND_EVIDENCE_RATE = 0.2         # a present symptom shown by two sentences
SPECIAL_CASE_RATE = 0.025

# ---------------------------------------------------------------------------------------------
# Slot fillers. A template names a slot as {name}; each occurrence draws independently.
SLOTS: dict[str, list[str]] = {
    "time": ["lately", "these days", "most days", "all the time", "nearly every day", "pretty much every day",
             "at the moment", "this month"],
    "since": ["for weeks now", "for the past month", "since the start of the year", "for months", "since the summer",
              "since I moved", "ever since the winter started", "for a couple of months now", "all semester",
              "since my birthday"],
    "duration": ["months", "a long time", "over a year", "weeks", "ages", "almost two years", "since last spring"],
    "relative": ["sister", "brother", "mom", "dad", "roommate", "best friend", "coworker", "cousin",
                 "girlfriend", "boyfriend", "husband", "wife", "neighbor", "aunt", "grandpa", "son", "daughter",
                 "flatmate", "manager", "uncle"],
    "activity": ["gaming", "drawing", "playing guitar", "reading", "going to the gym", "hiking", "cooking",
                 "watching movies", "painting", "running", "playing football", "photography", "writing",
                 "baking", "skateboarding", "knitting", "swimming", "playing piano", "gardening", "climbing",
                 "chess", "fishing", "dancing", "playing basketball"],
    "hobby_obj": ["guitar", "sketchbook", "camera", "paints", "console", "running shoes", "books", "bike",
                  "piano", "fishing rod", "climbing gear", "sewing machine", "keyboard", "skateboard"],
    "past": ["Two years ago", "Back in high school", "A few years back", "When I was in college", "Last winter",
             "In my early twenties", "Years ago", "Around the time of my divorce", "After my first breakup",
             "When I was a teenager", "Three years ago", "Before I changed jobs"],
    "sad": ["sad", "empty", "hopeless", "miserable", "down", "low", "gloomy", "heartbroken", "despondent",
            "so depressed", "hollow", "crushed", "numb and sad", "really low"],
    "bleak": ["grey and pointless", "dark", "hopeless", "bleak", "heavy", "colourless", "like a weight"],
    "cry_when": ["almost every night", "in the shower so nobody hears", "on my way home from work",
                 "for no reason at all", "whenever I'm alone", "every time I sit in my car", "before bed",
                 "at my desk", "when nobody is looking"],
    "treat": ["my favourite music", "seeing my friends", "going to concerts", "playing with my dog",
              "a day at the beach", "video games", "my favourite food", "a good movie", "going out on weekends"],
    "event": ["my birthday", "the holidays", "vacations", "new albums from my favourite band", "weekends",
              "the trip we planned", "Christmas"],
    "weight": ["ten pounds", "five kilos", "almost 15 pounds", "a lot of weight", "eight kilos", "20 pounds",
               "six kilos"],
    "food_bit": ["a few crackers", "half a sandwich", "a piece of toast", "some rice", "a banana", "a yogurt"],
    "late_hour": ["3am", "4 in the morning", "sunrise", "5am", "2am", "half past three"],
    "early_hour": ["3am", "4am", "2am", "5am", "half past two"],
    "hours": ["12", "14", "13", "15", "16"],
    "few": ["two", "three", "a couple of", "maybe four"],
    "small_task": ["doing the dishes", "walking to the mailbox", "making a sandwich", "answering a text",
                   "getting dressed", "taking out the trash", "folding laundry", "walking the dog"],
    "guilt_reason": ["letting my family down", "being so useless", "every mistake I've made",
                     "how I treated my friends", "being this way", "wasting my parents' money",
                     "ruining my relationship"],
    "guilt_obj": ["things I said years ago", "letting my parents pay my rent", "quitting my job",
                  "not being there for my friend", "the fight with my brother", "failing my exams"],
    "good_thing": ["to be happy", "my friends", "any kindness", "a second chance", "my partner",
                   "the help I'm getting", "to be loved"],
    "domain": ["work", "school", "being a parent", "being a friend", "my job", "life in general",
               "my relationship"],
    "n": ["five", "ten", "three", "six", "four"],
    "decision": ["what to eat", "what to wear", "which email to answer first", "what to buy at the store",
                 "what to watch", "which bus to take"],
    "setting": ["class", "meetings", "lectures", "conversations", "work calls", "seminars"],
    "task": ["an email", "a TV episode", "my homework", "a single chapter", "a report", "a short article",
             "a simple form"],
    "job": ["a nurse", "a cashier", "a software developer", "a teacher", "a barista", "a warehouse worker",
            "a student", "an accountant", "an electrician", "a graphic designer", "a delivery driver",
            "a lab technician", "a chef", "an apprentice plumber"],
    "cry_other": ["almost every night", "for no reason at all", "whenever they're alone",
                  "after every phone call with their mom", "in the car", "most evenings"],
    "pet": ["puppy", "kitten", "rabbit", "parrot", "hamster", "rescue dog", "cat"],
    "skill": ["Spanish", "the ukulele", "to code", "pottery", "sign language", "to cook Thai food",
              "to drive stick", "Japanese", "woodworking"],
    "course": ["Spanish", "pottery", "sign language", "Japanese", "woodworking", "web design", "bookkeeping",
               "first aid"],
    "weather": ["rainy", "freezing", "weirdly warm", "grey", "windy", "sunny", "humid", "snowy"],
    "age": ["19", "22", "24", "27", "31", "35", "28", "40", "20", "33"],
    "living": ["parents", "two roommates", "partner", "grandmother", "cat", "best friend", "sister"],
    "month": ["January", "March", "May", "August", "September", "October", "November"],
    "place": ["Lisbon", "the coast", "my aunt's cabin", "Japan", "the mountains", "Chicago", "a lake nearby"],
    "season": ["summer", "spring", "winter", "autumn"],
    "weekday": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"],
    "genre": ["cooking shows", "documentaries", "old sitcoms", "anime", "true crime", "nature videos"],
    "minutes": ["20", "45", "30", "50", "15", "40"],
    "show": ["that show", "the series everyone recommended", "the podcast", "that anime", "the reality show"],
    "food": ["pasta", "tacos", "ramen", "curry", "pizza", "a stir fry", "soup"],
}

# ---------------------------------------------------------------------------------------------
# Status-1 templates: each sentence shows its symptom(s), first person, present.
POSITIVE: dict[str, list[str]] = {
    "DEPRESSED_MOOD": [
        "I feel {sad} {time}.",
        "I've been feeling {sad} {since} and I can't shake it.",
        "Every morning I wake up feeling {sad} before anything has even happened.",
        "I cry {cry_when}.",
        "There's a heavy sadness that follows me around {time}.",
        "Everything feels {bleak} {time}.",
        "I just feel {sad} all day, every day.",
        "Nothing has gone wrong exactly, but I feel {sad} {time}.",
        "I'm so {sad} that I can barely hold it together at work.",
        "I keep breaking down in tears {cry_when}.",
        "The sadness doesn't lift, not even on good days.",
        "I feel completely hopeless about the future.",
        "Some days the emptiness inside me is so loud I can't stand it.",
        "It feels like there's a dark cloud over me {time}.",
        "My mood has been at rock bottom {since}.",
        "I put on a smile for everyone but inside I feel {sad}.",
        "Honestly I'm just {sad} all the time and I don't know why.",
        "I haven't felt happy in {duration}.",
        "I've been drowning in sadness {since}.",
        "I feel so down that even small things make me cry.",
        "My chest feels heavy with sadness most of the day.",
        "I'm depressed and it's getting worse {time}.",
        "I feel like I'm stuck in a hole I can't climb out of.",
        "The sadness hits me the moment I open my eyes.",
        "I've been depressed {since}, and today was especially bad.",
        "I feel empty inside, like someone switched the lights off.",
        "I can't remember the last day I didn't feel {sad}.",
    ],
    "ANHEDONIA": [
        "I used to love {activity}, but now I don't care about it at all.",
        "Nothing interests me anymore, not even {activity}.",
        "I haven't touched my {hobby_obj} in {duration} because it just feels pointless.",
        "{activity} used to be my favourite thing and now it feels like a chore.",
        "I don't enjoy anything anymore.",
        "My friends invite me out but I just don't feel like doing anything.",
        "Even {treat} doesn't make me happy anymore.",
        "I've lost interest in pretty much everything I used to enjoy.",
        "I go through the motions but I feel no joy in any of it.",
        "I can't remember the last time I actually enjoyed something.",
        "I don't get excited about anything, not even {event}.",
        "Things that used to make me happy feel flat and meaningless now.",
        "I quit {activity} because I stopped caring about it.",
        "I have zero interest in sex or dating anymore.",
        "I just sit there instead of doing the things I used to love.",
        "Hanging out with people means nothing to me now.",
        "I stopped caring about {activity} and everything else.",
        "I feel nothing when I do the stuff I used to look forward to.",
        "There's just no pleasure in anything anymore.",
        "I used to be passionate about {activity}, now I couldn't care less.",
        "My {hobby_obj} is gathering dust because nothing appeals to me.",
        "Even when something good happens I don't feel anything.",
        "I don't want to do any of my hobbies, they all seem boring and pointless.",
        "{treat} used to cheer me up, but now I feel nothing.",
    ],
    "APPETITE_CHANGE": [
        "I've barely been eating {since}, I just have no appetite.",
        "I lost {weight} without trying since this started.",
        "I've gained {weight} because I eat whenever I feel bad.",
        "Food has no taste for me anymore and I skip most meals.",
        "I can go a whole day without eating and not even notice.",
        "I've been binge eating every night and I can't stop.",
        "My appetite is completely gone {time}.",
        "I force myself to eat {food_bit} just so I don't pass out.",
        "I've been stress eating so much that none of my clothes fit.",
        "I keep forgetting to eat and I've gotten really thin.",
        "Eating feels like a chore, I have to make myself do it.",
        "I've been eating way more than usual {since}, mostly junk.",
        "My clothes are hanging off me because I barely eat.",
        "I'm never hungry anymore.",
        "I raid the fridge at night even when I'm not hungry.",
        "I've put on {weight} in the last couple of months from comfort eating.",
        "I only eat once a day now, if that.",
        "The thought of food makes me feel sick, so I mostly skip meals.",
        "My appetite has disappeared and I've lost {weight}.",
        "I can't stop snacking {time} and the scale keeps going up.",
    ],
    "SLEEP_ISSUES": [
        "I can't fall asleep until {late_hour} most nights.",
        "I wake up at {early_hour} every night and can't get back to sleep.",
        "I've been sleeping {hours} hours a day and still want more.",
        "My insomnia is so bad that I'm lucky to get {few} hours.",
        "I lie awake for hours every night with my mind racing.",
        "I sleep through most of the day {time}.",
        "I can't sleep anymore, I just stare at the ceiling all night.",
        "I've been oversleeping every day and missing my alarms.",
        "I haven't had a full night's sleep in {duration}.",
        "Some nights I don't sleep at all.",
        "I stay in bed sleeping until the afternoon almost every day.",
        "My sleep is completely messed up {time}.",
        "I keep waking up every hour through the night.",
        "I toss and turn until {late_hour} and then drag myself up for work.",
        "Even with sleeping pills I can't stay asleep.",
        "I sleep way too much, sometimes {hours} hours straight.",
        "Falling asleep takes me hours {time}.",
        "My sleep schedule is wrecked and I'm up all night and asleep all day.",
        "I can't sleep at night {time}.",
        "I wake up way too early every morning and just lie there.",
    ],
    "PSYCHOMOTOR": [
        "I can't sit still, I keep pacing around my room {time}.",
        "My {relative} says I move and talk much slower than I used to.",
        "I feel so restless that I'm constantly fidgeting.",
        "Everything I do feels like moving through mud, even my speech has slowed down.",
        "People at work have noticed I'm really slow to respond and move.",
        "I keep tapping my feet and wringing my hands, I can't calm my body down.",
        "I've been so agitated that I pace the kitchen for hours.",
        "It takes me forever to get up and walk across the room, my whole body has slowed down.",
        "My speech has gotten so slow that people finish my sentences.",
        "I can't stop bouncing my leg and picking at my skin.",
        "I get up and sit down over and over because I'm so restless.",
        "My {relative} pointed out that I've been pacing and fidgeting nonstop.",
        "I sit in the same spot for hours barely moving, and people have started to notice.",
        "My movements feel slowed down, like I'm walking underwater.",
        "I'm so keyed up that I can't keep my hands still.",
        "Friends keep asking why I talk so slowly now.",
    ],
    "FATIGUE": [
        "I'm exhausted all the time, even after a full night's sleep.",
        "I have no energy to do anything {time}.",
        "Just taking a shower wipes me out for the rest of the day.",
        "I feel drained from the moment I wake up.",
        "I'm so tired that {small_task} feels impossible.",
        "My body feels heavy and worn out {time}.",
        "I'm running on empty every single day.",
        "I come home from work and collapse on the couch with zero energy.",
        "I'm constantly fatigued, no matter how much I rest.",
        "Everything takes so much energy that I give up halfway.",
        "I feel completely wiped out {time}.",
        "My energy is just gone, I can barely get through the day.",
        "I'm always tired, like my battery never recharges.",
        "Climbing the stairs leaves me exhausted {time}.",
        "I'm too tired to even cook, so I just lie down.",
        "I've been so worn out that I can barely lift my arms.",
        "I feel physically exhausted {time} for no reason.",
        "Even small chores leave me drained for hours.",
        "I'm tired all the time and nothing gives me energy.",
        "{small_task} leaves me completely drained.",
    ],
    "WORTHLESSNESS": [
        "I feel completely worthless {time}.",
        "I'm such a failure, I can't do anything right.",
        "I hate myself for {guilt_reason}.",
        "I feel so guilty about {guilt_obj} that I can't stop thinking about it.",
        "I'm a burden to my {relative} and I know it.",
        "I feel like I'm worth nothing compared to everyone else.",
        "I'm pathetic and I don't deserve the people in my life.",
        "Everything that goes wrong is my fault.",
        "I'm a disappointment to everyone who ever believed in me.",
        "I look in the mirror and see someone useless.",
        "I don't deserve {good_thing}.",
        "I'm so stupid and worthless, I ruin everything.",
        "The guilt eats me alive every day.",
        "I feel like a complete waste of space.",
        "I blame myself for everything that happened to my family.",
        "I'm not good enough for anyone or anything.",
        "I keep thinking I'm the worst person I know.",
        "I feel like a fraud and a failure at {domain}.",
        "I feel like a burden to everyone around me.",
        "I can't forgive myself for {guilt_reason}.",
        "Deep down I believe I'm worthless.",
    ],
    "COGNITIVE_ISSUES": [
        "I can't concentrate on anything {time}.",
        "I read the same page {n} times and nothing sticks.",
        "My mind is so foggy that I forget what I was saying mid-sentence.",
        "I can't make even simple decisions like {decision}.",
        "I keep zoning out in {setting} and missing everything.",
        "My focus is completely gone and my grades are slipping.",
        "I've become so indecisive that I freeze when I have to choose anything.",
        "My brain feels like it's full of fog {time}.",
        "I can't think straight anymore.",
        "I forget things constantly, like appointments and where I put my keys.",
        "Studying is impossible because I can't keep my mind on it.",
        "At work I stare at my screen and can't process anything.",
        "I keep losing my train of thought.",
        "I used to be sharp but now I can't follow a simple conversation.",
        "Every decision, even a tiny one, feels overwhelming to make.",
        "I can't focus long enough to finish {task}.",
        "I spend an hour deciding {decision} and still can't pick.",
        "My memory has gotten so bad that I write everything down and still forget.",
    ],
    "SUICIDAL_THOUGHTS": [
        "I keep thinking about ending my life.",
        "Sometimes I wish I could go to sleep and never wake up.",
        "I've been having thoughts of killing myself {since}.",
        "I've started thinking about how I would kill myself.",
        "I don't want to be alive anymore.",
        "I think about death constantly.",
        "Everyone would be better off if I was gone.",
        "I've thought about just ending it more than once.",
        "Part of me wants to disappear forever.",
        "I looked up ways to end my life last night.",
        "I wouldn't mind if I didn't wake up tomorrow.",
        "I tried to take my own life a while ago and the thoughts are back.",
        "The idea of dying feels like a relief {time}.",
        "I keep imagining my own funeral and feeling calm about it.",
        "I wrote a goodbye note and then tore it up.",
        "I don't see the point in living anymore.",
        "Suicide is on my mind every single day.",
        "I just want to stop existing.",
        "I've been having suicidal thoughts {since}.",
    ],
}

# One sentence, two symptoms (both rows share the sentence_id), used when both are present.
COMBOS: dict[tuple[str, str], list[str]] = {
    ("FATIGUE", "COGNITIVE_ISSUES"): [
        "I'm so exhausted that I can't think straight {time}.",
        "I'm too drained to focus on anything.",
        "I'm so tired all the time that my brain feels foggy.",
    ],
    ("DEPRESSED_MOOD", "WORTHLESSNESS"): [
        "I feel {sad} and worthless most of the day.",
        "I'm miserable and I hate myself for it.",
        "I feel so sad and guilty {time}.",
    ],
    ("SLEEP_ISSUES", "FATIGUE"): [
        "I barely sleep and I'm exhausted all day.",
        "I sleep {hours} hours and still wake up drained.",
        "I can't sleep at night and I have no energy during the day.",
    ],
    ("DEPRESSED_MOOD", "ANHEDONIA"): [
        "I feel empty and nothing I used to enjoy matters anymore.",
        "I'm so {sad} that even {activity} doesn't interest me anymore.",
    ],
    ("DEPRESSED_MOOD", "SUICIDAL_THOUGHTS"): [
        "I feel so hopeless that I think about dying.",
        "I'm so {sad} that I don't want to be alive anymore.",
    ],
    ("WORTHLESSNESS", "SUICIDAL_THOUGHTS"): [
        "I'm worthless and I think everyone would be better off if I was dead.",
    ],
    ("APPETITE_CHANGE", "DEPRESSED_MOOD"): [
        "I'm too {sad} to eat and I've lost {weight}.",
    ],
}

# Hard negatives: (kind, symptom the words suggest, template). Never a label; may get a status-0 row.
# kinds: negation (first person, denied), other_person, past (recovered), other_sense (same words, other meaning)
HARD_NEGATIVES: list[tuple[str, str, str]] = [
    # negations
    ("negation", "SLEEP_ISSUES", "I never had trouble sleeping, I'm out as soon as my head hits the pillow."),
    ("negation", "SLEEP_ISSUES", "My sleep is actually fine {time}."),
    ("negation", "SLEEP_ISSUES", "I sleep a solid eight hours most nights."),
    ("negation", "SLEEP_ISSUES", "I don't have any problems falling asleep."),
    ("negation", "FATIGUE", "I'm not tired at all these days."),
    ("negation", "FATIGUE", "I've actually got plenty of energy {time}."),
    ("negation", "FATIGUE", "I don't feel exhausted, just bored."),
    ("negation", "FATIGUE", "Physically I feel fine and I have lots of energy."),
    ("negation", "APPETITE_CHANGE", "My appetite is totally normal."),
    ("negation", "APPETITE_CHANGE", "I'm eating normally and my weight hasn't changed."),
    ("negation", "APPETITE_CHANGE", "I haven't lost my appetite or anything."),
    ("negation", "DEPRESSED_MOOD", "I'm not sad about it, just annoyed."),
    ("negation", "DEPRESSED_MOOD", "I don't feel depressed, I'm mostly stressed about money."),
    ("negation", "DEPRESSED_MOOD", "I'm not sad about the move, if anyone is wondering."),
    ("negation", "ANHEDONIA", "I still love {activity} and do it every weekend."),
    ("negation", "ANHEDONIA", "I still enjoy {activity} as much as ever."),
    ("negation", "ANHEDONIA", "I haven't lost interest in my hobbies at all."),
    ("negation", "WORTHLESSNESS", "I don't think I'm worthless, I just made a mistake."),
    ("negation", "WORTHLESSNESS", "I don't feel guilty about leaving that job."),
    ("negation", "WORTHLESSNESS", "I know I'm good at what I do."),
    ("negation", "COGNITIVE_ISSUES", "I can concentrate fine at work."),
    ("negation", "COGNITIVE_ISSUES", "My focus is actually better than ever."),
    ("negation", "COGNITIVE_ISSUES", "I have no trouble making decisions."),
    ("negation", "SUICIDAL_THOUGHTS", "I would never hurt myself, just to be clear."),
    ("negation", "SUICIDAL_THOUGHTS", "I'm not suicidal or anything like that."),
    ("negation", "SUICIDAL_THOUGHTS", "I've never had thoughts of ending my life."),
    ("negation", "PSYCHOMOTOR", "Nobody has noticed anything different about how I move or talk."),
    ("negation", "PSYCHOMOTOR", "I'm not restless or fidgety at all."),
    # other people
    ("other_person", "SLEEP_ISSUES", "My {relative} can't sleep at night {time}."),
    ("other_person", "SLEEP_ISSUES", "My {relative} has insomnia and wakes up at {early_hour}."),
    ("other_person", "DEPRESSED_MOOD", "My {relative} has been feeling really down {since}."),
    ("other_person", "DEPRESSED_MOOD", "My {relative} cries {cry_other} and I don't know how to help."),
    ("other_person", "WORTHLESSNESS", "My {relative} says they feel worthless."),
    ("other_person", "WORTHLESSNESS", "My {relative} blames themselves for everything."),
    ("other_person", "FATIGUE", "My {relative} is exhausted from working double shifts."),
    ("other_person", "FATIGUE", "My {relative} has no energy {time}."),
    ("other_person", "APPETITE_CHANGE", "My {relative} stopped eating much after the breakup."),
    ("other_person", "APPETITE_CHANGE", "My {relative} has lost {weight} and barely eats."),
    ("other_person", "ANHEDONIA", "My {relative} has lost interest in {activity}."),
    ("other_person", "ANHEDONIA", "My {relative} doesn't enjoy anything anymore."),
    ("other_person", "COGNITIVE_ISSUES", "My {relative} can't focus on anything since the new baby."),
    ("other_person", "COGNITIVE_ISSUES", "My {relative} keeps forgetting things and can't make decisions."),
    ("other_person", "SUICIDAL_THOUGHTS", "My {relative} told me they've had thoughts of suicide, and I'm scared for them."),
    ("other_person", "PSYCHOMOTOR", "My {relative} paces around the house all night."),
    ("other_person", "PSYCHOMOTOR", "My {relative} can't sit still and keeps fidgeting."),
    # past, recovered
    ("past", "SLEEP_ISSUES", "{past}, I couldn't sleep for weeks, but that's completely behind me now."),
    ("past", "DEPRESSED_MOOD", "{past}, I was really depressed for a while, but therapy helped and that episode ended."),
    ("past", "APPETITE_CHANGE", "{past}, I lost a lot of weight, but I've been eating normally for a long time."),
    ("past", "FATIGUE", "{past}, I felt exhausted all the time, but my energy is back."),
    ("past", "ANHEDONIA", "{past}, I lost interest in everything, but I love my hobbies again."),
    ("past", "SUICIDAL_THOUGHTS", "{past}, I had dark thoughts about dying, but I haven't had them in years."),
    ("past", "WORTHLESSNESS", "{past}, I hated myself, but I've made peace with who I am."),
    ("past", "COGNITIVE_ISSUES", "{past}, I couldn't focus in class, but that has been fine for years."),
    ("past", "PSYCHOMOTOR", "{past}, I was so restless I paced all day, but that stopped long ago."),
    # mirrors of the positive phrasing: the same words, but denied, someone else's, or over
    ("negation", "SLEEP_ISSUES", "Sleep has never been a problem for me, I can fall asleep anywhere."),
    ("negation", "FATIGUE", "I'm not exhausted, I actually have plenty of energy."),
    ("negation", "WORTHLESSNESS", "I don't feel worthless at all, I know what I bring to the table."),
    ("negation", "COGNITIVE_ISSUES", "I can concentrate just fine {time}."),
    ("negation", "APPETITE_CHANGE", "I eat three meals a day and my appetite is fine."),
    ("negation", "ANHEDONIA", "I haven't lost interest in {activity}, it's still the best part of my week."),
    ("negation", "DEPRESSED_MOOD", "I don't feel hopeless, just frustrated with the paperwork."),
    ("other_person", "SLEEP_ISSUES", "My {relative} can't fall asleep until {late_hour} most nights."),
    ("other_person", "SLEEP_ISSUES", "My {relative} sleeps {hours} hours a day and is still in bed at noon."),
    ("other_person", "DEPRESSED_MOOD", "My {relative} feels {sad} {time} and won't talk about it."),
    ("other_person", "FATIGUE", "My {relative} is exhausted all the time since starting chemo."),
    ("other_person", "WORTHLESSNESS", "My {relative} keeps saying they're a failure and a burden."),
    ("other_person", "APPETITE_CHANGE", "My {relative} hasn't been eating and has lost {weight}."),
    ("other_person", "SUICIDAL_THOUGHTS", "My {relative} keeps talking about ending their life and I'm terrified."),
    ("other_person", "COGNITIVE_ISSUES", "My {relative} can't concentrate on anything {time}."),
    ("other_person", "ANHEDONIA", "My {relative} has lost interest in everything they used to enjoy."),
    ("other_person", "PSYCHOMOTOR", "My {relative} moves and talks so slowly {time} that we're worried."),
    ("past", "SLEEP_ISSUES", "{past}, I couldn't fall asleep until {late_hour}, but I sleep fine now."),
    ("past", "DEPRESSED_MOOD", "{past}, I cried {cry_other}, but those days are over."),
    ("past", "FATIGUE", "{past}, I had no energy at all, but I've fully recovered."),
    ("past", "WORTHLESSNESS", "{past}, I felt worthless, but I don't feel that way anymore."),
    ("past", "SUICIDAL_THOUGHTS", "{past}, I thought about ending my life, but I haven't felt that way in years."),
    ("past", "COGNITIVE_ISSUES", "{past}, I couldn't concentrate on anything, but my focus came back."),
    ("past", "APPETITE_CHANGE", "{past}, I stopped eating and lost {weight}, but I'm back to normal now."),
    ("past", "ANHEDONIA", "{past}, I lost interest in {activity}, but now I love it again."),
    ("other_sense", "FATIGUE", "I'm sick and tired of the rain here."),
    ("other_sense", "FATIGUE", "My legs are exhausted after leg day, but it's a good kind of sore."),
    ("other_sense", "SLEEP_ISSUES", "I can't sleep on planes, so I'm bringing a good book for the flight."),
    ("other_sense", "SLEEP_ISSUES", "I was up all night at my friend's wedding and it was a blast."),
    ("other_sense", "COGNITIVE_ISSUES", "I couldn't focus on the movie because the guy behind me kept talking."),
    ("other_sense", "WORTHLESSNESS", "I feel guilty for skipping the gym today, lol."),
    ("other_sense", "APPETITE_CHANGE", "I'm starving, lunch can't come soon enough."),
    ("other_sense", "SUICIDAL_THOUGHTS", "This exam is going to be the death of me, haha."),
    ("other_sense", "DEPRESSED_MOOD", "I felt a little sad when the season finale ended."),
    ("other_sense", "PSYCHOMOTOR", "The kids were restless on the long drive."),
    # same words, other senses
    ("other_sense", "DEPRESSED_MOOD", "The housing market is depressed right now, so we're waiting to sell."),
    ("other_sense", "DEPRESSED_MOOD", "You have to keep the button depressed for ten seconds to reset the router."),
    ("other_sense", "DEPRESSED_MOOD", "The economy in my town has been depressed since the factory closed."),
    ("other_sense", "DEPRESSED_MOOD", "I'm hopeless at cooking, but I enjoy trying new recipes."),
    ("other_sense", "DEPRESSED_MOOD", "The movie had a sad ending but it was great."),
    ("other_sense", "FATIGUE", "My phone battery is drained by lunchtime."),
    ("other_sense", "FATIGUE", "The car battery was completely dead this morning."),
    ("other_sense", "FATIGUE", "We drained the pool for the winter."),
    ("other_sense", "FATIGUE", "The hike was exhausting but totally worth the view."),
    ("other_sense", "APPETITE_CHANGE", "I lost my appetite for horror films after that last one."),
    ("other_sense", "APPETITE_CHANGE", "I have a big appetite for true crime podcasts."),
    ("other_sense", "APPETITE_CHANGE", "My company has no appetite for risk."),
    ("other_sense", "APPETITE_CHANGE", "My {pet} has a huge appetite and eats everything."),
    ("other_sense", "SLEEP_ISSUES", "My laptop keeps going to sleep during downloads."),
    ("other_sense", "SLEEP_ISSUES", "I slept on the decision and felt better about it."),
    ("other_sense", "SLEEP_ISSUES", "My foot fell asleep during the meeting."),
    ("other_sense", "SLEEP_ISSUES", "The town is so sleepy on Sundays."),
    ("other_sense", "WORTHLESSNESS", "These old coins turned out to be worthless."),
    ("other_sense", "WORTHLESSNESS", "I feel a bit guilty about eating the last slice of cake."),
    ("other_sense", "WORTHLESSNESS", "That stock became worthless overnight."),
    ("other_sense", "COGNITIVE_ISSUES", "The camera wouldn't focus in the dark."),
    ("other_sense", "COGNITIVE_ISSUES", "I can't decide between the blue or the grey sofa, both look great."),
    ("other_sense", "COGNITIVE_ISSUES", "I forgot my umbrella today, typical."),
    ("other_sense", "SUICIDAL_THOUGHTS", "That comedian absolutely killed it last night."),
    ("other_sense", "SUICIDAL_THOUGHTS", "This traffic is killing me."),
    ("other_sense", "SUICIDAL_THOUGHTS", "I'd die for a good bowl of {food} right now."),
    ("other_sense", "SUICIDAL_THOUGHTS", "My plants died while I was on vacation."),
    ("other_sense", "ANHEDONIA", "I lost interest in {show} after the second season."),
    ("other_sense", "ANHEDONIA", "I've lost interest in politics, it's all noise."),
    ("other_sense", "PSYCHOMOTOR", "The dog paces by the door when it wants a walk."),
    ("other_sense", "PSYCHOMOTOR", "My internet has been so slow {since}."),
    ("other_sense", "PSYCHOMOTOR", "I bought a fidget toy for my nephew."),
]

FILLER: list[str] = [
    "I work as {job} in a small town.",
    "We got a new {pet} a few weeks ago.",
    "My commute takes about {minutes} minutes each way.",
    "I've been trying to learn {skill} on weekends.",
    "The weather here has been {weather} all week.",
    "I'm {age} and I live with my {living}.",
    "Yesterday I went grocery shopping and forgot the milk.",
    "My landlord finally fixed the heater.",
    "I started a new job in {month}.",
    "We're planning a trip to {place} next {season}.",
    "I'm posting this from my phone, sorry for the formatting.",
    "Not sure if this is the right subreddit for this.",
    "Thanks for reading this far.",
    "Anyway, that's where I'm at right now.",
    "I have a test on {weekday}.",
    "My {relative} is visiting next week.",
    "I've been watching a lot of {genre} recently.",
    "Has anyone else dealt with something like this?",
    "I don't really know how to start this post.",
    "Some context: I'm {job} and I live alone.",
    "I made {food} for dinner last night.",
    "My car needs new tires before the {season}.",
    "I've been going to work and coming home, the usual.",
    "My {relative} and I went to the farmers market on {weekday}.",
    "Throwaway account because people I know use this site.",
    "Long time lurker, first time posting.",
    "I moved to a new apartment in {month}.",
    "Work has been busy because two people quit.",
    "Any advice would be appreciated.",
    "My {pet} knocked a glass off the table this morning.",
    "I'm taking an online course in {course}.",
    "We had a power outage on {weekday}.",
    "My phone screen cracked last week.",
    "I walk to the station every morning.",
    "Edit: fixed a typo.",
    "I'm {job}, if that matters.",
    "I usually spend Sundays with my {living}.",
    "The bus was late again today.",
    "I've been thinking about repainting my room.",
    "We celebrated my {relative}'s birthday on {weekday}.",
]

SPECIAL_CASE: list[str] = [
    "I was diagnosed with depression a couple of years ago.",
    "My therapist thinks I might have bipolar disorder.",
    "I've been on antidepressants since {month}.",
    "My psychiatrist changed my medication last month.",
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
    "other_sense": "The key word is used in an unrelated sense, not as a symptom.",
}
EXPLANATION_SPECIAL = "The sentence mentions a diagnosis or treatment rather than a specific DSM-5 symptom."

_SLOT_RE = re.compile(r"\{(\w+)\}")


def _fill(template: str, rng: random.Random) -> str:
    text = _SLOT_RE.sub(lambda m: rng.choice(SLOTS[m.group(1)]), template)
    return text[0].upper() + text[1:]


def _present_symptoms(rng: random.Random) -> list[str]:
    if rng.random() < NO_SYMPTOM_RATE:
        return []
    share = 1.0 - NO_SYMPTOM_RATE
    chosen = [s for s in SYMPTOMS if rng.random() < TARGET_RATES[s] / share]
    if not chosen:
        weights = [TARGET_RATES[s] for s in SYMPTOMS]
        chosen = [rng.choices(list(SYMPTOMS), weights=weights, k=1)[0]]
    return chosen


def _post(index: int, rng: random.Random, stats: dict) -> tuple[str, str, list[tuple]]:
    """One post: (post_id, text, annotation rows as tuples in ANNOTATIONS_HEADER order)."""
    post_id = f"g_{index:04d}_{rng.randint(1, 999)}"
    present = _present_symptoms(rng)
    used: list[str] = []            # sentences already in the post
    used_templates: list[str] = []  # templates already in the post (no two sentences from one template)

    def pick(templates: list[str]) -> str:
        fresh = [t for t in templates if t not in used_templates]
        template = rng.choice(fresh or templates)
        used_templates.append(template)
        return template

    def unique(make) -> str:
        for _ in range(50):
            text = make()
            if text not in used:
                used.append(text)
                return text
        raise RuntimeError("generator ran out of distinct sentences")  # pragma: no cover

    # items: (sentence, [(symptom, status, explanation), ...])
    evidence: list[tuple[str, list]] = []
    remaining = list(present)
    for pair, templates in COMBOS.items():
        if pair[0] in remaining and pair[1] in remaining and rng.random() < COMBO_RATE:
            sent = unique(lambda: _fill(pick(templates), rng))
            evidence.append((sent, [(s, 1, rng.choice(EXPLANATIONS_POSITIVE[s])) for s in pair]))
            remaining = [s for s in remaining if s not in pair]
    for sym in remaining:
        # a second sentence for the same symptom only while the post stays within 9 sentences
        k = 2 if rng.random() < SECOND_EVIDENCE_RATE and len(evidence) + len(remaining) < 8 else 1
        for _ in range(k):
            sent = unique(lambda: _fill(pick(POSITIVE[sym]), rng))
            evidence.append((sent, [(sym, 1, rng.choice(EXPLANATIONS_POSITIVE[sym]))]))

    hard: list[tuple[str, list, str]] = []
    if rng.random() < HARD_NEGATIVE_POST_RATE:
        n_hard = 1 if rng.random() < 0.5 else 2
        # negations and recovered-past claims only about symptoms the writer does not show
        pool = [h for h in HARD_NEGATIVES if h[0] in ("other_person", "other_sense") or h[1] not in present]
        for _ in range(n_hard):
            kind, sym, template = pool.pop(rng.randrange(len(pool)))
            sent = unique(lambda: _fill(template, rng))
            rows = [(sym, 0, EXPLANATIONS_NEGATIVE[kind])] if rng.random() < STATUS0_RATE else []
            hard.append((sent, rows, kind))

    special: list[tuple[str, list]] = []
    if rng.random() < SPECIAL_CASE_RATE and len(evidence) < 9:
        sent = unique(lambda: _fill(pick(SPECIAL_CASE), rng))
        special.append((sent, [("SPECIAL_CASE", 1, EXPLANATION_SPECIAL)]))

    target = rng.randint(3, 9)
    if len(evidence) + len(hard) + len(special) > 9:
        hard = hard[: max(0, 9 - len(evidence) - len(special))]
    for _, _, kind in hard:
        stats["hard_negatives"][kind] += 1
    hard = [(sent, rows) for sent, rows, _ in hard]
    n_filler = max(0, target - len(evidence) - len(hard) - len(special))
    filler = [(unique(lambda: _fill(pick(FILLER), rng)), []) for _ in range(n_filler)]

    sentences = evidence + hard + special + filler
    rng.shuffle(sentences)
    text = " ".join(s for s, _ in sentences)
    rows = []
    for pos, (sent, labels) in enumerate(sentences):
        for sym, status, expl in labels:
            rows.append((post_id, f"{post_id}_{pos}", sent, sym, status, expl))
    for sym in present:
        stats["per_symptom"][sym] += 1
    if not present:
        stats["no_symptom"] += 1
    return post_id, text, rows


def generate(out_dir, n_posts: int = 800, seed: int = 13) -> dict:
    """Write posts.csv, annotations.csv and README.md into ``out_dir``; return statistics.

    Same ``(n_posts, seed)`` -> byte-identical files.
    """
    if n_posts < 1:
        raise ValueError(f"n_posts must be positive, got {n_posts}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    stats: dict = {
        "generator_version": GENERATOR_VERSION, "n_posts": n_posts, "seed": seed, "no_symptom": 0,
        "per_symptom": {s: 0 for s in SYMPTOMS},
        "hard_negatives": {"negation": 0, "other_person": 0, "past": 0, "other_sense": 0},
        "annotation_rows": {"status_1": 0, "status_0": 0}, "special_case_rows": 0, "sentences": 0,
    }
    posts, annotations = [], []
    for i in range(1, n_posts + 1):
        post_id, text, rows = _post(i, rng, stats)
        posts.append((post_id, text))
        annotations.extend(rows)
    for row in annotations:
        stats["annotation_rows"]["status_1" if row[4] == 1 else "status_0"] += 1
        stats["special_case_rows"] += row[3] == "SPECIAL_CASE"
    _write_csv(out / "posts.csv", POSTS_HEADER, posts)
    _write_csv(out / "annotations.csv", ANNOTATIONS_HEADER, annotations)
    (out / "README.md").write_text(_README.format(n=n_posts, seed=seed, version=GENERATOR_VERSION),
                                   encoding="utf-8", newline="\n")
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
n_posts={n}, seed={seed}. Every post is synthetic: template sentences with slot
fillers, written to look like Reddit posts. No real person wrote them.

posts.csv:        post_id, text
annotations.csv:  post_id, sentence_id, sentence_text, DSM5_symptom, status, explanation

Same format as ReDSM5 (Bao, Perez, Parapar, CIKM 2025). Status-1 sentences occur
verbatim in their posts. Status-0 rows mark hard negatives that were considered and
rejected (negations, other people, recovered past episodes, other word senses).
Use it to run and test the pipeline; results on it say nothing about real data.
"""
