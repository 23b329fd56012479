//! The demo's sample data, generated deterministically (same seed, same documents): companies
//! with nested addresses and contacts, employees, products, and orders with lines, dates and
//! decimal prices, plus a few attachments.

use serde_json::{Value, json};

/// A small deterministic generator (SplitMix64): no dependency, same data on every machine.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    /// A price in cents between `low` and `high` whole units.
    fn cents(&mut self, low: u64, high: u64) -> u64 {
        low * 100 + self.next() % ((high - low) * 100)
    }
}

const CITIES: [(&str, &str, &str); 10] = [
    ("Oslo", "0150", "Norway"),
    ("Lyon", "69002", "France"),
    ("Porto", "4000-123", "Portugal"),
    ("Graz", "8010", "Austria"),
    ("Leeds", "LS1 4AP", "UK"),
    ("Gdansk", "80-001", "Poland"),
    ("Malmo", "211 20", "Sweden"),
    ("Bilbao", "48001", "Spain"),
    ("Utrecht", "3511", "Netherlands"),
    ("Turku", "20100", "Finland"),
];
const STREETS: [&str; 8] = [
    "Harbour Road",
    "Mill Lane",
    "Station Street",
    "King's Way",
    "Market Square",
    "Orchard Row",
    "Bridge Street",
    "Canal Walk",
];
const FIRST: [&str; 12] = [
    "Ada", "Bjørn", "Chloé", "Dmitri", "Eva", "Femi", "Greta", "Hugo", "Ines", "Jonas", "Kasia",
    "Liam",
];
const LAST: [&str; 12] = [
    "Berg",
    "Dubois",
    "Silva",
    "Huber",
    "O'Neill",
    "Nowak",
    "Lund",
    "Etxeberria",
    "de Vries",
    "Virtanen",
    "Moreau",
    "Smith",
];
const TRADES: [&str; 8] = [
    "Traders",
    "Provisions",
    "Foods",
    "Imports",
    "Market",
    "Grocers",
    "Delicatessen",
    "Supply",
];
const CATEGORIES: [&str; 6] = [
    "Beverages",
    "Condiments",
    "Dairy",
    "Grains",
    "Produce",
    "Seafood",
];
const PRODUCTS: [&str; 16] = [
    "Coffee",
    "Tea",
    "Mustard",
    "Syrup",
    "Cheese",
    "Butter",
    "Rye Bread",
    "Pasta",
    "Apples",
    "Pears",
    "Salmon",
    "Herring",
    "Honey",
    "Oats",
    "Cider",
    "Olives",
];

/// How much to generate.
#[derive(Debug, Clone, Copy)]
pub struct SampleSize {
    pub companies: usize,
    pub employees: usize,
    pub products: usize,
    pub orders: usize,
}

impl SampleSize {
    pub fn with_orders(orders: usize) -> SampleSize {
        SampleSize {
            companies: (orders / 50).clamp(5, 500),
            employees: 20,
            products: 48,
            orders,
        }
    }
}

/// One generated document.
pub struct SampleDocument {
    pub id: String,
    pub document: Value,
}

/// One generated attachment.
pub struct SampleAttachment {
    pub id: String,
    pub name: String,
    pub content_type: String,
    pub content: Vec<u8>,
}

fn address(random: &mut Random) -> Value {
    let (city, postal, country) = CITIES[random.below(CITIES.len())];
    json!({
        "Line1": format!("{} {}", 1 + random.below(200), random.pick(&STREETS)),
        "City": city,
        "PostalCode": postal,
        "Country": country,
    })
}

fn decimal(cents: u64) -> Value {
    // Two decimals, written as JSON numbers (19.9 stays 19.9, 20 stays 20).
    let text = format!("{}.{:02}", cents / 100, cents % 100);
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// `2025-MM-DDTHH:MM:SS.0000000Z`, days after 2025-01-01 (a simple calendar of 28-day months
/// is enough for sample data and keeps every date valid).
fn date(day: usize, seconds: usize) -> String {
    let month = 1 + (day / 28) % 12;
    let day_of_month = 1 + day % 28;
    let year = 2025 + day / (28 * 12);
    format!(
        "{year}-{month:02}-{day_of_month:02}T{:02}:{:02}:{:02}.0000000Z",
        (seconds / 3600) % 24,
        (seconds / 60) % 60,
        seconds % 60
    )
}

/// Every sample document, in a fixed order: companies, employees, products, orders.
pub fn documents(size: SampleSize) -> Vec<SampleDocument> {
    let mut random = Random(0xC01D_0E7C);
    let mut docs = Vec::new();
    for idx in 1..=size.companies {
        let name = format!(
            "{} {}",
            random.pick(&LAST).replace('\'', ""),
            random.pick(&TRADES)
        );
        docs.push(SampleDocument {
            id: format!("companies/{idx}-A"),
            document: json!({
                "Name": name,
                "Contact": {"Name": format!("{} {}", random.pick(&FIRST), random.pick(&LAST)),
                            "Title": random.pick(&["Owner", "Buyer", "Sales Manager"])},
                "Address": address(&mut random),
                "Phone": format!("+47 {:08}", random.next() % 100_000_000),
                "@metadata": {"@collection": "Companies"},
            }),
        });
    }
    for idx in 1..=size.employees {
        docs.push(SampleDocument {
            id: format!("employees/{idx}-A"),
            document: json!({
                "FirstName": random.pick(&FIRST),
                "LastName": random.pick(&LAST),
                "Title": random.pick(&["Sales Representative", "Sales Manager", "Inside Sales"]),
                "HiredAt": date(random.below(300), random.below(86_400)),
                "Address": address(&mut random),
                "@metadata": {"@collection": "Employees"},
            }),
        });
    }
    let mut prices = Vec::with_capacity(size.products);
    for idx in 1..=size.products {
        let price = random.cents(2, 60);
        prices.push(price);
        docs.push(SampleDocument {
            id: format!("products/{idx}-A"),
            document: json!({
                "Name": format!("{} No. {idx}", PRODUCTS[idx % PRODUCTS.len()]),
                "Category": random.pick(&CATEGORIES),
                "PricePerUnit": decimal(price),
                "UnitsInStock": random.below(500),
                "Discontinued": random.below(10) == 0,
                "@metadata": {"@collection": "Products"},
            }),
        });
    }
    for idx in 1..=size.orders {
        let n_lines = 1 + random.below(5);
        let lines: Vec<Value> = (0..n_lines)
            .map(|_| {
                let product = random.below(size.products);
                let discount = [0.0, 0.0, 0.05, 0.1, 0.15][random.below(5)];
                json!({
                    "Product": format!("products/{}-A", product + 1),
                    "ProductName": format!("{} No. {}", PRODUCTS[(product + 1) % PRODUCTS.len()], product + 1),
                    "PricePerUnit": decimal(prices[product]),
                    "Quantity": 1 + random.below(20),
                    "Discount": discount,
                })
            })
            .collect();
        let day = idx * 300 / size.orders.max(1);
        let shipped = random.below(3) != 0;
        docs.push(SampleDocument {
            id: format!("orders/{idx}-A"),
            document: json!({
                "Company": format!("companies/{}-A", 1 + random.below(size.companies)),
                "Employee": format!("employees/{}-A", 1 + random.below(size.employees)),
                "OrderedAt": date(day, random.below(86_400)),
                "RequireAt": date(day + 14, 43_200),
                "ShippedAt": if shipped { Value::String(date(day + 2, 36_000)) } else { Value::Null },
                "ShipTo": address(&mut random),
                "ShipVia": format!("shippers/{}-A", 1 + random.below(3)),
                "Freight": decimal(random.cents(1, 120)),
                "Lines": lines,
                "@metadata": {"@collection": "Orders"},
            }),
        });
    }
    docs
}

/// A few attachments: company logos and order invoices.
pub fn attachments(size: SampleSize) -> Vec<SampleAttachment> {
    let mut result = Vec::new();
    for idx in 1..=size.companies.min(5) {
        let svg = format!(
            "<svg xmlns='http://www.w3.org/2000/svg' width='64' height='64'><circle cx='32' cy='32' r='{}' fill='#{:06x}'/></svg>\n",
            10 + idx * 4,
            idx * 0x30_20_10
        );
        result.push(SampleAttachment {
            id: format!("companies/{idx}-A"),
            name: "logo.svg".to_owned(),
            content_type: "image/svg+xml".to_owned(),
            content: svg.into_bytes(),
        });
    }
    for idx in 1..=size.orders.min(3) {
        result.push(SampleAttachment {
            id: format!("orders/{idx}-A"),
            name: "invoice.txt".to_owned(),
            content_type: "text/plain".to_owned(),
            content: format!("Invoice for orders/{idx}-A\n").into_bytes(),
        });
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_is_deterministic_and_well_formed() {
        let size = SampleSize::with_orders(200);
        let first = documents(size);
        let second = documents(size);
        assert_eq!(
            first.len(),
            size.companies + size.employees + size.products + 200
        );
        for (a, b) in first.iter().zip(&second) {
            assert_eq!((&a.id, &a.document), (&b.id, &b.document));
        }
        let order = &first.last().expect("orders").document;
        assert!(order["Lines"].as_array().is_some_and(|it| !it.is_empty()));
        assert!(
            order["OrderedAt"]
                .as_str()
                .is_some_and(|it| it.ends_with('Z'))
        );
        assert_eq!(attachments(size).len(), 8);
    }
}
