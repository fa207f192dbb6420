#!/usr/bin/env python3
"""JSON-like values for docs/bench/dictionaries.sh (issue 13): N SET commands (RESP, on stdout) in three key
families, one value in three of each: user profiles, events and sessions of 100 B to 2 KB. Most values are
small; one in seven is "heavy" (longer lists and texts), which gives the tail to 2 KB. Field names are
realistic and repeat in every value; names, cities, user agents, SKUs and a small vocabulary repeat across
values; ids, timestamps, prices and tokens are random. Keys are family:<12-digit id within the family>
(ids 0..N/3), so that redis-benchmark's __rand_int__ with -r N/3 always names an existing key.

Usage: dict_values.py N > data.resp   (deterministic: the same N gives the same bytes)
"""
import random, sys, json
n = int(sys.argv[1]); r = random.Random(7)
first = ["Anna","Ben","Chen","Dara","Emil","Fatima","Goran","Hana","Ivan","Jun","Kofi","Lena","Mateo","Nora","Omar","Priya","Quinn","Rosa","Sven","Tariq","Uma","Viktor","Wen","Yara","Zoe"]
last = ["Smith","Garcia","Kim","Müller","Rossi","Tanaka","Okafor","Silva","Novak","Dubois","Cohen","Singh","Nguyen","Ivanova","Haddad","Larsen"]
cities = [("Berlin","DE","10115"),("Lisbon","PT","1100-148"),("Austin","US","78701"),("Osaka","JP","530-0001"),("Nairobi","KE","00100"),("Lima","PE","15001"),("Oslo","NO","0150"),("Pune","IN","411001"),("Quebec","CA","G1R 4P5"),("Seoul","KR","04524"),("Madrid","ES","28013"),("Denver","US","80202")]
streets = ["Main St","High Street","Rua Augusta","Hauptstraße","Elm Avenue","Station Road","Park Lane","Market Square","Church Road","Mill Lane"]
words = ("the a and of to in for on with my at from by about love coffee music travel hiking photography books design code "
         "data science engineer product manager student teacher runner cyclist climber chef gardener parent dog cat lover "
         "open source cloud startup marketing sales support writer artist gamer film jazz rock football tennis yoga "
         "based currently working building learning sharing ideas projects team people city world life").split()
tags = ["early-adopter","beta","newsletter","vip","churn-risk","mobile","desktop","referral","trial","annual","monthly","gdpr-consent"]
pages = ["/","/home","/search","/cart","/checkout","/product/{}","/account","/help","/category/{}","/blog/{}"]
referrers = ["https://www.google.com/","https://duckduckgo.com/","https://news.ycombinator.com/","https://t.co/","",""]
agents = ["Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0 Safari/537.36",
          "Mozilla/5.0 (Macintosh; Intel Mac OS X 13_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.5 Safari/605.1.15",
          "Mozilla/5.0 (iPhone; CPU iPhone OS 16_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
          "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:120.0) Gecko/20100101 Firefox/120.0"]
devices = [{"os":"iOS","model":"iPhone14,2"},{"os":"Android","model":"Pixel 7"},{"os":"Windows","model":"PC"},{"os":"macOS","model":"MacBookPro18,1"},{"os":"Linux","model":"PC"}]
skus = ["SKU-%05d" % i for i in range(2000)]
dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
def geo(p, cap):  # geometric: most small; one value in seven is heavy (a tail to 2 KB)
    if heavy: p, cap = p + (1 - p) * 0.7, cap * 3
    k = 0
    while k < cap and r.random() < p:
        k += 1
    return k
def user(i, ts):
    f, l = r.choice(first), r.choice(last)
    c = r.choice(cities)
    v = {"id": i, "name": f + " " + l, "email": "%s.%s%d@example.com" % (f.lower(), l.lower(), r.randrange(1000)),
         "city": c[0], "country": c[1], "plan": r.choice(["free","free","pro","team"]), "created": ts,
         "verified": r.random() < 0.7,
         "preferences": {"lang": r.choice(["en","en","de","pt","ja","es"]), "theme": r.choice(["dark","light"]),
                         "notifications": {"email": r.random() < 0.5, "push": r.random() < 0.3}}}
    nt = geo(0.55, 6)
    if nt: v["tags"] = r.sample(tags, min(nt, len(tags)))
    na = geo(0.45, 5)
    if na:
        v["addresses"] = [{"street": "%d %s" % (r.randrange(1, 300), r.choice(streets)), "city": cc[0], "zip": cc[2],
                           "country": cc[1], "default": k == 0} for k, cc in enumerate(r.choice(cities) for _ in range(na))]
    nb = geo(0.75, 40)
    if nb: v["bio"] = " ".join(r.choice(words) for _ in range(nb * 4))
    return v
def event(i, ts):
    v = {"app": "web", "type": r.choice(["view","view","view","click","scroll","purchase","signup"]), "user": r.randrange(n),
         "session": "%016x" % r.getrandbits(64), "page": r.choice(pages).format(r.randrange(5000)),
         "ts": ts * 1000 + r.randrange(1000), "ms": r.randrange(2000)}
    if r.random() < 0.5: v["referrer"] = r.choice(referrers)
    if r.random() < 0.6: v["device"] = r.choice(devices)
    npr = geo(0.6, 30)
    if npr:
        v["props"] = {"item_%d" % k: r.choice([r.randrange(100), r.choice(skus), r.random() < 0.5, round(r.random() * 100, 2)]) for k in range(npr)}
    return v
def session(i, ts):
    v = {"user": r.randrange(n), "ip": "10.%d.%d.%d" % (r.randrange(256), r.randrange(256), r.randrange(256)),
         "agent": r.choice(agents), "started": ts, "last_seen": ts + r.randrange(3600), "ttl": r.choice([900,1800,3600]),
         "csrf": "%032x" % r.getrandbits(128)}
    nc = geo(0.6, 25)
    if nc:
        v["cart"] = [{"sku": r.choice(skus), "qty": r.randrange(1, 4), "price": round(r.random() * 200, 2)} for _ in range(nc)]
    if r.random() < 0.3: v["flags"] = r.sample(["2fa","remember_me","beta_ui","impersonated","sso"], r.randrange(1, 4))
    return v
heavy = False
makers = [("user", user), ("event", event), ("session", session)]
def cmd(key, value):
    return b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(key), key, len(value), value)
out = sys.stdout.buffer
buf = []
for i in range(n):
    name, make = makers[i % 3]
    ts = 1700000000 + r.randrange(30_000_000)
    heavy = r.random() < 0.14
    v = make(i, ts)
    data = dumps(v).encode()
    while len(data) > 2048:  # keep the range: drop the largest list/text until it fits
        big = max((k for k in v if isinstance(v[k], (list, dict, str))), key=lambda k: len(dumps(v[k])))
        if isinstance(v[big], list) and len(v[big]) > 1: v[big] = v[big][: len(v[big]) // 2]
        elif isinstance(v[big], str): v[big] = v[big][: len(v[big]) // 2]
        else: del v[big]
        data = dumps(v).encode()
    buf.append(cmd(b"%s:%012d" % (name.encode(), i // 3), data))
    if len(buf) >= 10000:
        out.write(b"".join(buf)); buf = []
out.write(b"".join(buf))
