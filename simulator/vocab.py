"""Word lists and text templates the demo company is made of.

Every string here is plain ASCII without quotes or backslashes, so event lines can be
assembled as JSON without an escaping pass (which would be the slow part at 20M lines).
"""

from __future__ import annotations

FIRST_NAMES = [
    "Anna",
    "Ben",
    "Chloe",
    "David",
    "Emma",
    "Felix",
    "Grace",
    "Hugo",
    "Isla",
    "Jack",
    "Karin",
    "Liam",
    "Mia",
    "Noah",
    "Olivia",
    "Paul",
    "Quinn",
    "Rosa",
    "Sam",
    "Tara",
    "Uma",
    "Victor",
    "Wendy",
    "Xavier",
    "Yara",
    "Zoe",
    "Lucas",
    "Sofia",
    "Mateo",
    "Lea",
    "Jonas",
    "Elena",
    "Marco",
    "Nina",
    "Omar",
    "Priya",
    "Ravi",
    "Sara",
    "Tom",
    "Ines",
]
LAST_NAMES = [
    "Smith",
    "Jones",
    "Garcia",
    "Muller",
    "Rossi",
    "Martin",
    "Dubois",
    "Novak",
    "Silva",
    "Jansen",
    "Nielsen",
    "Kowalski",
    "Brown",
    "Taylor",
    "Wilson",
    "Moreau",
    "Fischer",
    "Weber",
    "Costa",
    "Lopez",
    "Andersen",
    "Berg",
    "Kim",
    "Patel",
    "Singh",
    "Nguyen",
    "Khan",
    "Haddad",
    "Okafor",
    "Ivanova",
]
EMAIL_DOMAINS = [
    "gmail.com",
    "outlook.com",
    "yahoo.com",
    "icloud.com",
    "proton.me",
    "web.de",
    "example.org",
]
COUNTRIES = ["GB", "DE", "FR", "NL", "ES", "IT", "SE", "PL", "US", "IE"]
COUNTRY_WEIGHTS = [0.22, 0.18, 0.14, 0.08, 0.09, 0.08, 0.05, 0.06, 0.07, 0.03]
OWNERS = [
    "alice.ward",
    "bruno.keller",
    "carla.mendes",
    "dev.sharma",
    "erik.lund",
    "fatima.aziz",
    "george.hill",
    "hana.sato",
    "ivan.petrov",
    "julia.roth",
    "kofi.mensah",
    "laura.vidal",
]
INVALID_EMAIL_PATTERNS = ["{u}@", "{u}.example.com", "n/a", "{u}@@{d}", "{u} @{d}", "{u}@{d}."]

CATEGORIES = [
    "running",
    "outdoor",
    "kitchen",
    "coffee",
    "books",
    "toys",
    "beauty",
    "garden",
    "electronics",
    "fashion",
    "home",
    "pets",
]
BRANDS = [
    "Northwind",
    "Acme",
    "Bluepeak",
    "Solano",
    "Kestrel",
    "Fjord",
    "Marlow",
    "Verde",
    "Lumen",
    "Oakline",
]
PRODUCT_NOUNS = {
    "running": ["Running Shoe", "Trail Sock", "Sport Watch", "Hydration Vest", "Running Cap"],
    "outdoor": ["Tent", "Sleeping Bag", "Headlamp", "Backpack", "Camping Stove"],
    "kitchen": ["Chef Knife", "Cutting Board", "Frying Pan", "Knife Sharpener", "Dutch Oven"],
    "coffee": ["Espresso Beans", "Grinder", "Pour Over Kettle", "Milk Frother", "Coffee Filter"],
    "books": ["Cookbook", "Travel Guide", "Novel", "Field Guide", "Notebook"],
    "toys": ["Puzzle", "Building Set", "Plush Bear", "Board Game", "Kite"],
    "beauty": ["Face Cream", "Shampoo", "Lip Balm", "Serum", "Body Lotion"],
    "garden": ["Pruning Shears", "Seed Kit", "Watering Can", "Planter", "Garden Gloves"],
    "electronics": ["Headphones", "Charger", "Power Bank", "Smart Speaker", "USB Cable"],
    "fashion": ["Rain Jacket", "Wool Sweater", "Scarf", "Sneaker", "Belt"],
    "home": ["Throw Blanket", "Candle", "Desk Lamp", "Cushion", "Picture Frame"],
    "pets": ["Dog Leash", "Cat Toy", "Pet Bed", "Dog Food", "Cat Litter"],
}
# Median list price per category (store currency).
CATEGORY_PRICE = {
    "running": 60,
    "outdoor": 80,
    "kitchen": 40,
    "coffee": 18,
    "books": 15,
    "toys": 25,
    "beauty": 20,
    "garden": 22,
    "electronics": 70,
    "fashion": 55,
    "home": 30,
    "pets": 20,
}
SEARCH_WORDS = {c: [n.lower() for n in nouns] for c, nouns in PRODUCT_NOUNS.items()}

USER_AGENTS = {
    # (platform, device_type) -> user agents
    ("web", "desktop"): [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
        "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    ],
    ("web", "mobile"): [
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Mobile Safari/537.36",
    ],
    ("web", "tablet"): [
        "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    ],
    ("ios", "mobile"): ["ShopApp/5.2.1 (iPhone; iOS 17.4; Scale/3.00)"],
    ("ios", "tablet"): ["ShopApp/5.2.1 (iPad; iOS 17.4; Scale/2.00)"],
    ("android", "mobile"): [
        "ShopApp/5.2.0 (Android 14; Pixel 8)",
        "ShopApp/5.1.9 (Android 13; SM-S911B)",
    ],
}
# Device kinds a person can own, with how common each is.
DEVICE_KINDS = [
    ("web", "desktop"),
    ("web", "mobile"),
    ("web", "tablet"),
    ("ios", "mobile"),
    ("ios", "tablet"),
    ("android", "mobile"),
]
DEVICE_KIND_WEIGHTS = [0.36, 0.30, 0.06, 0.14, 0.03, 0.11]

SITE = "https://shop.example.com"
STATIC_PAGES = [
    "/",
    "/sale",
    "/new-arrivals",
    "/help/shipping",
    "/help/returns",
    "/account",
    "/blog/gift-guide",
    "/stores",
]

# Where a session came from: (referrer, utm_source, utm_medium, utm_campaign), weights.
TRAFFIC_SOURCES = [
    (None, None, None, None),
    ("https://www.google.com/", None, None, None),
    ("https://www.google.com/", "google", "cpc", "brand-search"),
    ("https://www.google.com/", "google", "cpc", "generic-shopping"),
    ("https://www.facebook.com/", "facebook", "paid_social", "spring-promo"),
    ("https://www.instagram.com/", "instagram", "social", "influencer"),
    ("https://www.bing.com/", None, None, None),
    ("https://partner-blog.example.net/", "affiliate", "referral", "partner-reviews"),
]
TRAFFIC_WEIGHTS = [0.34, 0.24, 0.10, 0.08, 0.08, 0.06, 0.04, 0.06]

# Ticket text by tone. {o} is the order id. The words carry the sentiment the pipeline scores.
TICKET_TEMPLATES = {
    "late": [
        (
            "Where is my order #{o}?",
            "My order #{o} is late and still not here. Very disappointed, the delivery promise was broken.",
        ),
        (
            "Order #{o} delayed again",
            "This is frustrating. Order #{o} arrived days late and nobody told me why. Terrible service.",
        ),
        (
            "Late delivery complaint",
            "Delivery of order #{o} was late. Unacceptable, I needed it for a gift. Angry and unhappy.",
        ),
    ],
    "return": [
        (
            "Return request for order #{o}",
            "The item from order #{o} is broken and poor quality. I want a refund, really disappointed.",
        ),
        (
            "Wrong size, returning #{o}",
            "Order #{o} does not fit and the material feels cheap. Please process my return.",
        ),
        (
            "Damaged item in #{o}",
            "The product in order #{o} arrived damaged. Awful packaging, I am returning it.",
        ),
    ],
    "complaint": [
        (
            "Charged twice",
            "I was charged twice for my last purchase. This is a bad experience and I am annoyed.",
        ),
        (
            "Rude support agent",
            "The agent on the phone was rude and unhelpful. Worst customer service, I am unhappy.",
        ),
        (
            "Product stopped working",
            "The product stopped working after a week. Poor quality, disappointed and frustrated.",
        ),
    ],
    "praise": [
        (
            "Thank you!",
            "Great service and fast delivery of order #{o}. Love the product, thank you so much!",
        ),
        (
            "Excellent quality",
            "Order #{o} arrived early and the quality is excellent. Happy customer, will buy again.",
        ),
        (
            "Compliments to the team",
            "Wonderful experience, helpful staff and a perfect product. Thanks!",
        ),
    ],
    "question": [
        (
            "Question about sizes",
            "Hello, could you tell me which size to choose for the jacket? Thanks.",
        ),
        ("Change delivery address", "Can I change the delivery address of order #{o}? Regards."),
        ("Invoice request", "Please send me an invoice for order #{o}."),
    ],
}
TICKET_TONES = list(TICKET_TEMPLATES)
SURVEY_COMMENTS = {
    "bad": [
        "Delivery was late and support did not help.",
        "Poor quality, disappointed.",
        "Too many emails, and the order came late.",
    ],
    "mid": ["It was ok.", "Fine, nothing special.", "Prices could be better."],
    "good": [
        "Great shop, fast delivery!",
        "Love the products.",
        "Excellent service, will recommend.",
    ],
}
