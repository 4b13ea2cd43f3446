"""Word lists of the synthetic data generator: genres, styles, names, places."""

from __future__ import annotations

# fmt: off
GENRES = (
    "Rock", "Electronic", "Jazz", "Hip Hop", "Funk / Soul", "Pop", "Classical", "Reggae", "Latin",
    "Blues", "Folk, World, & Country", "Stage & Screen",
)
STYLES = {
    "Rock": (
        "Indie Rock", "Punk", "Alternative Rock", "Psychedelic Rock", "Hard Rock", "Post-Punk",
        "Shoegaze", "Garage Rock", "Prog Rock",
    ),
    "Electronic": (
        "House", "Techno", "Ambient", "Drum n Bass", "Electro", "Deep House", "Minimal",
        "Downtempo", "IDM", "Trance",
    ),
    "Jazz": (
        "Hard Bop", "Modal", "Free Jazz", "Cool Jazz", "Fusion", "Bossa Nova", "Soul-Jazz",
        "Bebop",
    ),
    "Hip Hop": ("Boom Bap", "Conscious", "Trap", "Instrumental", "Gangsta", "Jazzy Hip-Hop"),
    "Funk / Soul": ("Funk", "Soul", "Disco", "Rhythm & Blues", "Neo Soul", "Boogie", "Gospel"),
    "Pop": ("Synth-pop", "Indie Pop", "Ballad", "Europop", "Dream Pop", "Vocal"),
    "Classical": ("Baroque", "Romantic", "Modern", "Contemporary", "Opera", "Choral"),
    "Reggae": ("Roots Reggae", "Dub", "Dancehall", "Ska", "Rocksteady", "Lovers Rock"),
    "Latin": ("Salsa", "Cumbia", "Samba", "MPB", "Bolero", "Tango"),
    "Blues": ("Delta Blues", "Chicago Blues", "Electric Blues", "Country Blues"),
    "Folk, World, & Country": ("Folk", "Country", "African", "Afrobeat", "Bluegrass", "Celtic"),
    "Stage & Screen": ("Soundtrack", "Score", "Musical", "Theme"),
}
WORDS_A = (
    "Blue", "Golden", "Silent", "Electric", "Velvet", "Midnight", "Crystal", "Wild", "Lost",
    "Broken", "Sweet", "Cosmic", "Hidden", "Burning", "Distant", "Hollow", "Lunar", "Neon",
    "Quiet", "Restless", "Scarlet", "Secret", "Solar", "Urban", "Violet", "Wandering",
)
WORDS_B = (
    "River", "Garden", "Machine", "Horizon", "Echo", "Shadow", "Mirror", "Harbor", "Signal",
    "Forest", "Dream", "Highway", "Ocean", "Tower", "Window", "Fever", "Island", "Engine",
    "Parade", "Season", "Temple", "Thunder", "Valley", "Wave", "Circle", "Morning",
)
FIRST_NAMES = (
    "Alex", "Billie", "Carmen", "Dexter", "Elena", "Felix", "Grace", "Hugo", "Ines", "Jonas",
    "Kira", "Louis", "Maya", "Nina", "Oscar", "Paula", "Quincy", "Rosa", "Sami", "Tariq", "Uma",
    "Victor", "Wanda", "Xavier", "Yara", "Zane",
)
LAST_NAMES = (
    "Adams", "Baker", "Costa", "Dubois", "Evans", "Fischer", "Garcia", "Hughes", "Ito", "Jensen",
    "Kowalski", "Lopez", "Moreau", "Nakamura", "Okafor", "Petrov", "Quinn", "Rossi", "Silva",
    "Turner", "Umar", "Vogel", "Walsh", "Young", "Zimmer",
)
COUNTRIES = (
    "US", "UK", "DE", "FR", "JP", "NL", "IT", "ES", "SE", "BR", "JM", "CA", "AU",
)
CITIES = (
    "Berlin", "London", "Paris", "Tokyo", "Amsterdam", "New York", "Chicago", "Detroit", "Lisbon",
    "Madrid", "Stockholm", "Melbourne", "Montreal", "Kingston", "Osaka", "Bristol",
)
COUNTRY_WEIGHTS = (0.3, 0.2, 0.12, 0.08, 0.08, 0.05, 0.04, 0.03, 0.03, 0.02, 0.02, 0.02, 0.01)
COLLECTION_NAMES = (
    "Favourites", "Wishlist", "Crate Digging", "Sunday Morning", "Late Night", "Party",
    "Desert Island", "To Listen",
)
FEEDBACK_MESSAGES = (
    "Audio preview did not start", "Please add a dark mode", "Great recommendations this week",
    "Store page loads slowly", "Would love more jazz suggestions", "Search misses some labels",
)
# fmt: on
