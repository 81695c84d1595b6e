//! The Breizhsport demo catalogue: a sports retailer in Brittany. Deterministic (same data on
//! every machine), generated through the same service functions as the API, in one transaction.
//! Pictures are SVGs drawn here: no network.

use crate::app::{self, loc};
use crate::domain::{Attribute, AttributeType, Localized, Status};
use crate::http::wire::*;
use crate::store;
use chrono::Utc;
use kernel::Currency;
use platform::db::Db;
use uuid::Uuid;

/// What the seeder wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Seeded {
    pub products: usize,
    pub variants: usize,
    pub categories: usize,
    pub brands: usize,
}

const BRANDS: &[&str] = &[
    "Armorik",
    "Kerlann",
    "Iroise Outdoor",
    "Penn Ar Bed",
    "Glaz Sport",
    "Mor Braz",
    "Brocéliande Trail",
    "Aber Cycles",
    "Korrigan",
    "Ar Men",
    "Triskell",
    "Goëlo",
    "Men Du",
    "Ouessant",
    "Kenavo Fit",
];

/// (slug, parent slug, French, English)
const CATEGORIES: &[(&str, Option<&str>, &str, &str)] = &[
    ("running", None, "Course à pied", "Running"),
    (
        "chaussures-running",
        Some("running"),
        "Chaussures de running",
        "Running shoes",
    ),
    (
        "chaussures-trail",
        Some("running"),
        "Chaussures de trail",
        "Trail shoes",
    ),
    (
        "vetements-running",
        Some("running"),
        "Vêtements de running",
        "Running apparel",
    ),
    ("cyclisme", None, "Cyclisme", "Cycling"),
    ("velos", Some("cyclisme"), "Vélos", "Bikes"),
    (
        "casques-velo",
        Some("cyclisme"),
        "Casques vélo",
        "Bike helmets",
    ),
    (
        "vetements-cyclisme",
        Some("cyclisme"),
        "Vêtements de cyclisme",
        "Cycling apparel",
    ),
    ("randonnee", None, "Randonnée", "Hiking"),
    (
        "chaussures-randonnee",
        Some("randonnee"),
        "Chaussures de randonnée",
        "Hiking boots",
    ),
    ("sacs-a-dos", Some("randonnee"), "Sacs à dos", "Backpacks"),
    (
        "vestes-impermeables",
        Some("randonnee"),
        "Vestes imperméables",
        "Rain jackets",
    ),
    ("sports-nautiques", None, "Sports nautiques", "Water sports"),
    ("surf", Some("sports-nautiques"), "Surf", "Surfing"),
    ("voile", Some("sports-nautiques"), "Voile", "Sailing"),
    ("fitness", None, "Fitness", "Fitness"),
    (
        "sports-collectifs",
        None,
        "Sports collectifs",
        "Team sports",
    ),
    (
        "football",
        Some("sports-collectifs"),
        "Football",
        "Football",
    ),
    ("rugby", Some("sports-collectifs"), "Rugby", "Rugby"),
];

#[derive(Clone, Copy)]
enum Sizing {
    Shoes,
    Apparel,
    Frame,
    Helmet,
    Litres,
    Board,
    One,
}

/// (category, French noun, English noun, sizing, price floor in cents, spread, weight g)
const TYPES: &[(&str, &str, &str, Sizing, i64, i64, i64)] = &[
    (
        "chaussures-running",
        "Chaussures de running",
        "Running shoes",
        Sizing::Shoes,
        5990,
        9000,
        280,
    ),
    (
        "chaussures-running",
        "Chaussures de compétition",
        "Racing shoes",
        Sizing::Shoes,
        9990,
        12000,
        210,
    ),
    (
        "chaussures-trail",
        "Chaussures de trail",
        "Trail shoes",
        Sizing::Shoes,
        7990,
        9000,
        320,
    ),
    (
        "vetements-running",
        "T-shirt respirant",
        "Breathable T-shirt",
        Sizing::Apparel,
        1490,
        2500,
        120,
    ),
    (
        "vetements-running",
        "Collant de running",
        "Running tights",
        Sizing::Apparel,
        2490,
        3000,
        180,
    ),
    (
        "vetements-running",
        "Coupe-vent léger",
        "Light windbreaker",
        Sizing::Apparel,
        3990,
        5000,
        150,
    ),
    (
        "velos",
        "Vélo de route",
        "Road bike",
        Sizing::Frame,
        69900,
        250000,
        8900,
    ),
    (
        "velos",
        "VTT",
        "Mountain bike",
        Sizing::Frame,
        49900,
        200000,
        12500,
    ),
    (
        "velos",
        "Vélo de ville",
        "City bike",
        Sizing::Frame,
        34900,
        60000,
        15500,
    ),
    (
        "casques-velo",
        "Casque de route",
        "Road helmet",
        Sizing::Helmet,
        3990,
        15000,
        260,
    ),
    (
        "vetements-cyclisme",
        "Maillot de cyclisme",
        "Cycling jersey",
        Sizing::Apparel,
        3490,
        6000,
        140,
    ),
    (
        "vetements-cyclisme",
        "Cuissard",
        "Bib shorts",
        Sizing::Apparel,
        4490,
        8000,
        190,
    ),
    (
        "chaussures-randonnee",
        "Chaussures de randonnée",
        "Hiking boots",
        Sizing::Shoes,
        6990,
        13000,
        540,
    ),
    (
        "sacs-a-dos",
        "Sac à dos de randonnée",
        "Hiking backpack",
        Sizing::Litres,
        3990,
        14000,
        1100,
    ),
    (
        "vestes-impermeables",
        "Veste imperméable",
        "Rain jacket",
        Sizing::Apparel,
        4990,
        20000,
        420,
    ),
    (
        "surf",
        "Planche de surf",
        "Surfboard",
        Sizing::Board,
        29900,
        50000,
        3200,
    ),
    (
        "surf",
        "Combinaison néoprène",
        "Wetsuit",
        Sizing::Apparel,
        9990,
        25000,
        1600,
    ),
    (
        "voile",
        "Veste de quart",
        "Sailing jacket",
        Sizing::Apparel,
        14990,
        30000,
        900,
    ),
    (
        "voile",
        "Gilet de sauvetage",
        "Life jacket",
        Sizing::Apparel,
        5990,
        9000,
        700,
    ),
    (
        "fitness",
        "Tapis de yoga",
        "Yoga mat",
        Sizing::One,
        1990,
        4000,
        1200,
    ),
    (
        "fitness",
        "Haltères réglables",
        "Adjustable dumbbells",
        Sizing::One,
        4990,
        15000,
        10000,
    ),
    (
        "football",
        "Ballon de football",
        "Football",
        Sizing::One,
        1490,
        6000,
        430,
    ),
    (
        "football",
        "Chaussures de football",
        "Football boots",
        Sizing::Shoes,
        4990,
        15000,
        230,
    ),
    (
        "rugby",
        "Ballon de rugby",
        "Rugby ball",
        Sizing::One,
        1990,
        5000,
        440,
    ),
    (
        "rugby",
        "Maillot de rugby",
        "Rugby jersey",
        Sizing::Apparel,
        3990,
        5000,
        350,
    ),
];

const MODELS: &[&str] = &[
    "Aven", "Blavet", "Elorn", "Odet", "Rance", "Scorff", "Trieux", "Vilaine", "Jaudy", "Laïta",
    "Couesnon", "Ellé", "Isole", "Oust",
];

/// (French, English, hex for pictures, SKU code)
const COLOURS: &[(&str, &str, &str, &str)] = &[
    ("Noir", "Black", "#1f2328", "BLK"),
    ("Bleu marine", "Navy", "#1d3b6e", "NVY"),
    ("Rouge", "Red", "#c62828", "RED"),
    ("Vert", "Green", "#2e7d32", "GRN"),
    ("Jaune", "Yellow", "#f9a825", "YEL"),
    ("Gris", "Grey", "#757575", "GRY"),
    ("Orange", "Orange", "#ef6c00", "ORG"),
    ("Blanc", "White", "#eceff1", "WHT"),
];

/// A tiny deterministic generator (same demo everywhere).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn ean13(n: u64) -> String {
    // 376: a French GS1 prefix
    let body = format!("376{:09}", n % 1_000_000_000);
    let digits: Vec<u32> = body.bytes().map(|b| u32::from(b - b'0')).collect();
    format!("{body}{}", kernel::gtin_check_digit(&digits))
}

fn sizes(s: Sizing) -> Vec<&'static str> {
    match s {
        Sizing::Shoes => vec!["39", "40", "41", "42", "43", "44", "45", "46"],
        Sizing::Apparel => vec!["XS", "S", "M", "L", "XL", "XXL"],
        Sizing::Frame => vec!["S", "M", "L", "XL"],
        Sizing::Helmet => vec!["S", "M", "L"],
        Sizing::Litres => vec!["20L", "35L", "50L"],
        Sizing::Board => vec!["6'0", "6'6", "7'2", "8'0"],
        Sizing::One => vec![],
    }
}

fn svg(title: &str, brand: &str, colour: &str, sizing: Sizing, n: usize) -> Vec<u8> {
    // One pictogram per kind of product; the colour is the first variant's.
    let shape = match sizing {
        Sizing::Shoes => {
            "<path d='M40 150 Q60 110 110 112 L150 90 Q175 96 178 128 L250 140 Q270 150 262 168 L48 170 Q36 166 40 150 Z'/>"
        }
        Sizing::Apparel => {
            "<path d='M100 60 L130 50 Q150 70 170 50 L200 60 L240 100 L215 125 L200 110 L200 200 L100 200 L100 110 L85 125 L60 100 Z'/>"
        }
        Sizing::Frame => {
            "<g fill='none' stroke-width='10'><circle cx='85' cy='150' r='45'/><circle cx='215' cy='150' r='45'/><path d='M85 150 L130 90 L200 90 L215 150 M130 90 L150 150 L200 90'/></g>"
        }
        Sizing::Helmet => "<path d='M60 160 Q60 70 150 62 Q240 70 240 160 Z'/>",
        Sizing::Litres => "<rect x='95' y='55' width='110' height='150' rx='30'/>",
        Sizing::Board => "<ellipse cx='150' cy='130' rx='40' ry='100'/>",
        Sizing::One => "<circle cx='150' cy='130' r='70'/>",
    };
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('\'', "&apos;")
    };
    format!(
        "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 300 300' role='img' aria-label='{t}'>\
         <rect width='300' height='300' fill='hsl({h},35%,94%)'/>\
         <g fill='{c}' stroke='{c}'>{shape}</g>\
         <text x='150' y='250' font-family='sans-serif' font-size='18' text-anchor='middle' fill='#222'>{b}</text>\
         <text x='150' y='275' font-family='sans-serif' font-size='13' text-anchor='middle' fill='#555'>{t}</text></svg>",
        t = esc(title),
        b = esc(brand),
        c = colour,
        h = (n * 47) % 360,
    )
    .into_bytes()
}

/// Seeds Breizhsport into an empty catalogue. Does nothing (returns `None`) when products exist.
pub async fn seed(db: &Db) -> Result<Option<Seeded>, app::Error> {
    if store::count_products(db).await? > 0 {
        return Ok(None);
    }
    let now = Utc::now();
    let mut tx = db.begin().await?;
    let mut out = Seeded::default();

    let mut brand_ids = Vec::new();
    for name in BRANDS {
        let b = app::create_brand(
            &mut tx,
            &NewBrand {
                slug: None,
                name: (*name).to_string(),
            },
            now,
        )
        .await?;
        brand_ids.push((b.id, b.name));
        out.brands += 1;
    }
    let mut cat_ids: Vec<(&str, Uuid)> = Vec::new();
    for (i, (slug, parent, fr, en)) in CATEGORIES.iter().enumerate() {
        let parent_id =
            parent.and_then(|p| cat_ids.iter().find(|(s, _)| *s == p).map(|(_, id)| *id));
        let k = app::create_category(
            &mut tx,
            &NewCategory {
                slug: Some((*slug).to_string()),
                name: loc(fr, en),
                parent_id,
                position: i as i32,
            },
            now,
        )
        .await?;
        cat_ids.push((slug, k.id));
        out.categories += 1;
    }

    let mut rng = Lcg(0x00b2_e12a_5b0e_7d11);
    let mut n = 0usize;
    let mut barcode_seq = 100_000u64;
    // 13 products per type: 25 types → 325 products
    for (cat, fr, en, sizing, floor, spread, weight) in TYPES {
        let category_id = cat_ids.iter().find(|(s, _)| s == cat).map(|(_, id)| *id);
        for k in 0..13 {
            n += 1;
            let (brand_id, brand_name) = &brand_ids[(n * 7 + k) % brand_ids.len()];
            let model = MODELS[(n + k * 3) % MODELS.len()];
            let series = 1 + (k % 4);
            let name = Localized {
                fr: format!("{fr} {brand_name} {model} {series}"),
                en: format!("{brand_name} {model} {series} {en}"),
            };
            let cents = {
                let raw = floor + (rng.below((*spread / 100) as u64) as i64) * 100;
                (raw / 100) * 100 - 10 // x.90 prices
            }
            .max(990);
            let colour_count = match sizing {
                Sizing::Frame | Sizing::Board => 1,
                Sizing::One => 1 + rng.below(3) as usize,
                _ => 2 + rng.below(2) as usize,
            };
            let first_colour = rng.below(COLOURS.len() as u64) as usize;
            let colours: Vec<_> = (0..colour_count)
                .map(|c| COLOURS[(first_colour + c * 3) % COLOURS.len()])
                .collect();
            let size_list = sizes(*sizing);
            let mut variants = Vec::new();
            for colour in &colours {
                let sizes_or_one: Vec<Option<&str>> = if size_list.is_empty() {
                    vec![None]
                } else {
                    size_list.iter().map(|s| Some(*s)).collect()
                };
                for size in sizes_or_one {
                    barcode_seq += 1;
                    let size_code: String = size
                        .map(|s| s.replace('\'', "-").to_ascii_uppercase())
                        .unwrap_or_else(|| "U".into());
                    // big sizes of apparel cost a little more, like in real shops
                    let surcharge = if matches!(size, Some("XXL")) { 300 } else { 0 };
                    variants.push(NewVariant {
                        sku: format!("BZH-{n:04}-{}-{size_code}", colour.3),
                        barcode: Some(ean13(barcode_seq)),
                        size: size.map(str::to_string),
                        colour: Some(colour.1.to_string()),
                        price: PriceInput {
                            amount_minor: cents + surcharge,
                            currency: Currency::EUR,
                        },
                        vat_rate: 2000,
                    });
                }
            }
            let attributes = vec![
                Attribute {
                    code: "weight_g".into(),
                    kind: AttributeType::Integer,
                    value: serde_json::json!(weight + (rng.below(20) as i64 - 10) * weight / 100),
                },
                Attribute {
                    code: "waterproof".into(),
                    kind: AttributeType::Boolean,
                    value: serde_json::json!(
                        matches!(*cat, "vestes-impermeables" | "voile" | "surf")
                            || rng.below(4) == 0
                    ),
                },
                Attribute {
                    code: "made_in".into(),
                    kind: AttributeType::Text,
                    value: serde_json::json!(if rng.below(3) == 0 {
                        "France"
                    } else {
                        "Portugal"
                    }),
                },
            ];
            let status = if n.is_multiple_of(25) {
                Status::Draft
            } else {
                Status::Published
            };
            let input = NewProduct {
                slug: None,
                name: name.clone(),
                description: Localized {
                    fr: format!(
                        "{fr} {brand_name} {model} : conçu en Bretagne pour {}. Poids : {weight} g.",
                        if *weight > 2000 {
                            "les sorties exigeantes"
                        } else {
                            "l'entraînement de tous les jours"
                        }
                    ),
                    en: format!(
                        "The {brand_name} {model} {en}: designed in Brittany for {}. Weight: {weight} g.",
                        if *weight > 2000 {
                            "demanding outings"
                        } else {
                            "everyday training"
                        }
                    ),
                },
                brand_id: Some(*brand_id),
                category_id,
                attributes,
                status: Some(status),
                variants,
                images: vec![],
            };
            let p = app::create_product(&mut tx, &input, now).await?;
            out.variants += p.variants.len();
            out.products += 1;
            let data = svg(&name.fr, brand_name, colours[0].2, *sizing, n);
            store::insert_image(
                tx.conn(),
                &store::ImageWrite {
                    id: Uuid::now_v7(),
                    product_id: p.id,
                    position: 0,
                    alt: &name,
                    content_type: Some("image/svg+xml"),
                    data: Some(&data),
                    url: None,
                },
            )
            .await?;
        }
    }
    tx.commit().await?;
    Ok(Some(out))
}
