//! The two languages of the web pages. Every visible string is a field here, so a missing
//! translation is a compile error, not an English word on a French page.

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    Fr,
    En,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::Fr, Lang::En];

    pub fn code(&self) -> &'static str {
        match self {
            Lang::Fr => "fr",
            Lang::En => "en",
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "fr" => Some(Lang::Fr),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    pub fn other(&self) -> Lang {
        match self {
            Lang::Fr => Lang::En,
            Lang::En => Lang::Fr,
        }
    }

    /// The language named first in `Accept-Language` among ours; French otherwise.
    pub fn negotiate(accept: Option<&str>) -> Lang {
        let Some(a) = accept else {
            return Lang::Fr;
        };
        for part in a.split(',') {
            let tag = part
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if tag.starts_with("fr") {
                return Lang::Fr;
            }
            if tag.starts_with("en") {
                return Lang::En;
            }
        }
        Lang::Fr
    }

    pub fn t(&self) -> &'static T {
        match self {
            Lang::Fr => &FR,
            Lang::En => &EN,
        }
    }

    /// Picks the string of this language from a catalogue `Localized`.
    pub fn pick<'a>(&self, l: &'a catalog::domain::Localized) -> &'a str {
        let s = match self {
            Lang::Fr => &l.fr,
            Lang::En => &l.en,
        };
        if s.is_empty() { &l.fr } else { s }
    }

    /// A money amount the way this language writes it: `1 234,50 €` or `€1,234.50`.
    /// The decimals follow the currency (none for yen, three for dinars); an unknown code is
    /// written with two.
    pub fn money(&self, minor: i64, currency: &str) -> String {
        let parts = match kernel::Currency::parse(currency) {
            Ok(c) => kernel::Money::new(minor, c).parts(),
            Err(_) => kernel::money::MoneyParts {
                negative: minor < 0,
                units: minor.unsigned_abs() / 100,
                fraction: format!("{:02}", minor.unsigned_abs() % 100),
            },
        };
        let neg = parts.negative;
        let digits = parts.units.to_string();
        let sep = match self {
            Lang::Fr => '\u{202f}',
            Lang::En => ',',
        };
        let mut grouped = String::new();
        for (i, ch) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                grouped.push(sep);
            }
            grouped.push(ch);
        }
        let sign = if neg { "-" } else { "" };
        let sym = match currency {
            "EUR" => "€",
            other => other,
        };
        let (point, fraction) = match (self, parts.fraction.is_empty()) {
            (_, true) => ("", ""),
            (Lang::Fr, false) => (",", parts.fraction.as_str()),
            (Lang::En, false) => (".", parts.fraction.as_str()),
        };
        match self {
            Lang::Fr => format!("{sign}{grouped}{point}{fraction}\u{a0}{sym}"),
            Lang::En => format!("{sign}{sym}{grouped}{point}{fraction}"),
        }
    }

    /// A date and time from epoch milliseconds, in UTC.
    pub fn datetime(&self, ms: i64) -> String {
        let Some(d) = chrono::DateTime::from_timestamp_millis(ms) else {
            return String::new();
        };
        match self {
            Lang::Fr => d.format("%d/%m/%Y %H:%M").to_string(),
            Lang::En => d.format("%Y-%m-%d %H:%M").to_string(),
        }
    }
}

/// The strings of one language.
pub struct T {
    pub shop_name: &'static str,
    pub skip_to_content: &'static str,
    pub search: &'static str,
    pub search_placeholder: &'static str,
    pub cart: &'static str,
    pub account: &'static str,
    pub sign_in: &'static str,
    pub sign_out: &'static str,
    pub sign_up: &'static str,
    pub back_office: &'static str,
    pub other_language: &'static str,
    pub categories: &'static str,
    pub featured: &'static str,
    pub all_products: &'static str,
    pub filters: &'static str,
    pub brand: &'static str,
    pub size: &'static str,
    pub colour: &'static str,
    pub price: &'static str,
    pub price_min: &'static str,
    pub price_max: &'static str,
    pub in_stock_only: &'static str,
    pub sort: &'static str,
    pub sort_newest: &'static str,
    pub sort_price_asc: &'static str,
    pub sort_price_desc: &'static str,
    pub sort_name: &'static str,
    pub apply: &'static str,
    pub any: &'static str,
    pub results: &'static str,
    pub no_results: &'static str,
    pub from_price: &'static str,
    pub previous: &'static str,
    pub next: &'static str,
    pub vat_included: &'static str,
    pub vat_of_which: &'static str,
    pub choose_variant: &'static str,
    pub quantity: &'static str,
    pub add_to_cart: &'static str,
    pub added_to_cart: &'static str,
    pub availability: &'static str,
    pub online: &'static str,
    pub left_at: &'static str,
    pub out_of_stock: &'static str,
    pub in_stock: &'static str,
    pub description: &'static str,
    pub your_cart: &'static str,
    pub cart_empty: &'static str,
    pub product: &'static str,
    pub unit_price: &'static str,
    pub total: &'static str,
    pub subtotal: &'static str,
    pub shipping: &'static str,
    pub update: &'static str,
    pub remove: &'static str,
    pub checkout: &'static str,
    pub continue_shopping: &'static str,
    pub email: &'static str,
    pub password: &'static str,
    pub new_password: &'static str,
    pub name: &'static str,
    pub delivery: &'static str,
    pub home_delivery: &'static str,
    pub click_collect: &'static str,
    pub store: &'static str,
    pub address: &'static str,
    pub postcode: &'static str,
    pub city: &'static str,
    pub country: &'static str,
    pub payment: &'static str,
    pub payment_note: &'static str,
    pub test_card: &'static str,
    pub card_ok: &'static str,
    pub card_declined: &'static str,
    pub card_insufficient: &'static str,
    pub card_3ds: &'static str,
    pub place_order: &'static str,
    pub shipping_free_from: &'static str,
    pub order_confirmed: &'static str,
    pub order_thanks: &'static str,
    pub order: &'static str,
    pub orders: &'static str,
    pub order_status: &'static str,
    pub date: &'static str,
    pub status: &'static str,
    pub no_orders: &'static str,
    pub err_out_of_stock: &'static str,
    pub err_declined: &'static str,
    pub err_price_changed: &'static str,
    pub err_generic: &'static str,
    pub err_form: &'static str,
    pub err_csrf: &'static str,
    pub err_not_found: &'static str,
    pub err_forbidden: &'static str,
    pub err_busy: &'static str,
    pub confirm_payment: &'static str,
    pub confirm_payment_text: &'static str,
    pub approve: &'static str,
    pub refuse: &'static str,
    pub payment_pending: &'static str,
    pub payment_pending_text: &'static str,
    pub check_again: &'static str,
    pub forgot_password: &'static str,
    pub reset_password: &'static str,
    pub reset_sent: &'static str,
    pub reset_done: &'static str,
    pub set_password: &'static str,
    pub signed_in_as: &'static str,
    pub bad_credentials: &'static str,
    pub account_created: &'static str,
    pub my_orders: &'static str,
    pub offline_title: &'static str,
    pub offline_text: &'static str,
    pub suggestions: &'static str,
    pub page_not_found: &'static str,
    pub home: &'static str,
    pub password_hint: &'static str,
    pub fulfilment: &'static str,
    pub collect_at: &'static str,
    pub deliver_to: &'static str,
    pub items: &'static str,
    pub admin_dashboard: &'static str,
    pub admin_stock: &'static str,
    pub admin_products: &'static str,
    pub admin_staff: &'static str,
    pub admin_keys: &'static str,
}

pub static FR: T = T {
    shop_name: "Breizhsport",
    skip_to_content: "Aller au contenu",
    search: "Rechercher",
    search_placeholder: "Chaussures, vélo, sac…",
    cart: "Panier",
    account: "Mon compte",
    sign_in: "Se connecter",
    sign_out: "Se déconnecter",
    sign_up: "Créer un compte",
    back_office: "Back-office",
    other_language: "English",
    categories: "Catégories",
    featured: "À la une",
    all_products: "Tous les produits",
    filters: "Filtres",
    brand: "Marque",
    size: "Taille",
    colour: "Couleur",
    price: "Prix",
    price_min: "Prix minimum (€)",
    price_max: "Prix maximum (€)",
    in_stock_only: "En stock uniquement",
    sort: "Trier par",
    sort_newest: "Nouveautés",
    sort_price_asc: "Prix croissant",
    sort_price_desc: "Prix décroissant",
    sort_name: "Nom",
    apply: "Appliquer",
    any: "Toutes",
    results: "résultats",
    no_results: "Aucun produit ne correspond.",
    from_price: "à partir de",
    previous: "Précédent",
    next: "Suivant",
    vat_included: "TTC",
    vat_of_which: "dont TVA",
    choose_variant: "Choisissez une taille et une couleur",
    quantity: "Quantité",
    add_to_cart: "Ajouter au panier",
    added_to_cart: "Ajouté au panier.",
    availability: "Disponibilité en magasin",
    online: "En ligne",
    left_at: "en stock à",
    out_of_stock: "Rupture de stock",
    in_stock: "En stock",
    description: "Description",
    your_cart: "Votre panier",
    cart_empty: "Votre panier est vide.",
    product: "Produit",
    unit_price: "Prix unitaire",
    total: "Total",
    subtotal: "Sous-total",
    shipping: "Livraison",
    update: "Mettre à jour",
    remove: "Retirer",
    checkout: "Commander",
    continue_shopping: "Continuer mes achats",
    email: "Adresse e-mail",
    password: "Mot de passe",
    new_password: "Nouveau mot de passe",
    name: "Nom",
    delivery: "Livraison ou retrait",
    home_delivery: "Livraison à domicile",
    click_collect: "Retrait en magasin (click & collect)",
    store: "Magasin",
    address: "Adresse",
    postcode: "Code postal",
    city: "Ville",
    country: "Pays (code ISO, ex. FR)",
    payment: "Paiement",
    payment_note: "Mode test : choisissez une carte de test. Nous ne saisissons jamais de numéro de carte.",
    test_card: "Carte de test",
    card_ok: "Visa acceptée (4242…)",
    card_declined: "Carte refusée (…0002)",
    card_insufficient: "Fonds insuffisants (…9995)",
    card_3ds: "Confirmation 3-D Secure (…3155)",
    place_order: "Payer et commander",
    shipping_free_from: "Livraison offerte dès",
    order_confirmed: "Commande confirmée",
    order_thanks: "Merci ! Votre paiement est accepté. Un e-mail de confirmation part à",
    order: "Commande",
    orders: "Commandes",
    order_status: "État",
    date: "Date",
    status: "État",
    no_orders: "Aucune commande pour l'instant.",
    err_out_of_stock: "Un article n'est plus disponible en quantité suffisante. Rien n'a été débité : ajustez votre panier.",
    err_declined: "Le paiement a été refusé. Rien n'a été débité et votre panier est intact : essayez un autre moyen de paiement.",
    err_price_changed: "Des prix ont changé depuis l'ajout au panier. Vérifiez votre panier puis commandez à nouveau.",
    err_generic: "Une erreur est survenue. Réessayez dans un instant.",
    err_form: "Vérifiez les champs signalés.",
    err_csrf: "Ce formulaire a expiré ou ne vient pas de ce site. Rechargez la page et réessayez.",
    err_not_found: "Cette page n'existe pas.",
    err_forbidden: "Vous n'avez pas accès à cette page.",
    err_busy: "Trop de demandes : patientez quelques secondes.",
    confirm_payment: "Confirmez votre paiement",
    confirm_payment_text: "Votre banque demande une confirmation (3-D Secure, page de test du prestataire).",
    approve: "Confirmer le paiement",
    refuse: "Refuser",
    payment_pending: "Paiement en attente",
    payment_pending_text: "Votre paiement attend une confirmation. Cette page se met à jour quand vous la rechargez.",
    check_again: "Vérifier à nouveau",
    forgot_password: "Mot de passe oublié ?",
    reset_password: "Réinitialiser le mot de passe",
    reset_sent: "Si un compte existe pour cette adresse, un lien de réinitialisation vient de partir.",
    reset_done: "Mot de passe changé. Vous pouvez vous connecter.",
    set_password: "Enregistrer le mot de passe",
    signed_in_as: "Connecté·e en tant que",
    bad_credentials: "Adresse e-mail ou mot de passe incorrect.",
    account_created: "Compte créé. Bienvenue !",
    my_orders: "Mes commandes",
    offline_title: "Hors connexion",
    offline_text: "Pas de réseau pour l'instant. Reconnectez-vous puis rechargez la page.",
    suggestions: "Suggestions",
    page_not_found: "Page introuvable",
    home: "Accueil",
    password_hint: "8 caractères au moins. Une phrase facile à retenir convient très bien.",
    fulfilment: "Remise",
    collect_at: "Retrait à",
    deliver_to: "Livraison à",
    items: "articles",
    admin_dashboard: "Tableau de bord",
    admin_stock: "Stock",
    admin_products: "Produits",
    admin_staff: "Équipe",
    admin_keys: "Clés d'API",
};

pub static EN: T = T {
    shop_name: "Breizhsport",
    skip_to_content: "Skip to content",
    search: "Search",
    search_placeholder: "Shoes, bike, backpack…",
    cart: "Cart",
    account: "My account",
    sign_in: "Sign in",
    sign_out: "Sign out",
    sign_up: "Create an account",
    back_office: "Back office",
    other_language: "Français",
    categories: "Categories",
    featured: "Featured",
    all_products: "All products",
    filters: "Filters",
    brand: "Brand",
    size: "Size",
    colour: "Colour",
    price: "Price",
    price_min: "Minimum price (€)",
    price_max: "Maximum price (€)",
    in_stock_only: "In stock only",
    sort: "Sort by",
    sort_newest: "Newest",
    sort_price_asc: "Price, low to high",
    sort_price_desc: "Price, high to low",
    sort_name: "Name",
    apply: "Apply",
    any: "Any",
    results: "results",
    no_results: "No product matches.",
    from_price: "from",
    previous: "Previous",
    next: "Next",
    vat_included: "incl. VAT",
    vat_of_which: "of which VAT",
    choose_variant: "Choose a size and a colour",
    quantity: "Quantity",
    add_to_cart: "Add to cart",
    added_to_cart: "Added to your cart.",
    availability: "Availability in stores",
    online: "Online",
    left_at: "left at",
    out_of_stock: "Out of stock",
    in_stock: "In stock",
    description: "Description",
    your_cart: "Your cart",
    cart_empty: "Your cart is empty.",
    product: "Product",
    unit_price: "Unit price",
    total: "Total",
    subtotal: "Subtotal",
    shipping: "Shipping",
    update: "Update",
    remove: "Remove",
    checkout: "Check out",
    continue_shopping: "Continue shopping",
    email: "E-mail address",
    password: "Password",
    new_password: "New password",
    name: "Name",
    delivery: "Delivery or collection",
    home_delivery: "Home delivery",
    click_collect: "Collect in store (click & collect)",
    store: "Store",
    address: "Address",
    postcode: "Postcode",
    city: "City",
    country: "Country (ISO code, e.g. FR)",
    payment: "Payment",
    payment_note: "Test mode: pick a test card. We never take card numbers.",
    test_card: "Test card",
    card_ok: "Visa, approved (4242…)",
    card_declined: "Declined card (…0002)",
    card_insufficient: "Insufficient funds (…9995)",
    card_3ds: "3-D Secure confirmation (…3155)",
    place_order: "Pay and place order",
    shipping_free_from: "Free delivery from",
    order_confirmed: "Order confirmed",
    order_thanks: "Thank you! Your payment was accepted. A confirmation e-mail is on its way to",
    order: "Order",
    orders: "Orders",
    order_status: "Status",
    date: "Date",
    status: "Status",
    no_orders: "No orders yet.",
    err_out_of_stock: "An item is no longer available in that quantity. Nothing was charged: adjust your cart.",
    err_declined: "The payment was declined. Nothing was charged and your cart is untouched: try another payment method.",
    err_price_changed: "Some prices changed since you added the items. Review your cart, then check out again.",
    err_generic: "Something went wrong. Try again in a moment.",
    err_form: "Check the fields marked below.",
    err_csrf: "This form expired or did not come from this site. Reload the page and try again.",
    err_not_found: "This page does not exist.",
    err_forbidden: "You do not have access to this page.",
    err_busy: "Too many requests: wait a few seconds.",
    confirm_payment: "Confirm your payment",
    confirm_payment_text: "Your bank asks for a confirmation (3-D Secure, the provider's test page).",
    approve: "Confirm the payment",
    refuse: "Refuse",
    payment_pending: "Payment pending",
    payment_pending_text: "Your payment is waiting for a confirmation. Reload this page to see where it stands.",
    check_again: "Check again",
    forgot_password: "Forgot your password?",
    reset_password: "Reset the password",
    reset_sent: "If an account exists for this address, a reset link is on its way.",
    reset_done: "Password changed. You can sign in.",
    set_password: "Save the password",
    signed_in_as: "Signed in as",
    bad_credentials: "Wrong e-mail address or password.",
    account_created: "Account created. Welcome!",
    my_orders: "My orders",
    offline_title: "Offline",
    offline_text: "No network right now. Reconnect, then reload the page.",
    suggestions: "Suggestions",
    page_not_found: "Page not found",
    home: "Home",
    password_hint: "At least 8 characters. A phrase you remember works well.",
    fulfilment: "Fulfilment",
    collect_at: "Collect at",
    deliver_to: "Deliver to",
    items: "items",
    admin_dashboard: "Dashboard",
    admin_stock: "Stock",
    admin_products: "Products",
    admin_staff: "Staff",
    admin_keys: "API keys",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_written_the_local_way() {
        assert_eq!(Lang::Fr.money(123450, "EUR"), "1\u{202f}234,50\u{a0}€");
        assert_eq!(Lang::En.money(123450, "EUR"), "€1,234.50");
        assert_eq!(Lang::En.money(5, "EUR"), "€0.05");
        assert_eq!(Lang::Fr.money(-490, "EUR"), "-4,90\u{a0}€");
        // by the currency's exponent, never as if everything had cents
        assert_eq!(Lang::Fr.money(1500, "JPY"), "1\u{202f}500\u{a0}JPY");
        assert_eq!(Lang::En.money(1500, "JPY"), "JPY1,500");
        assert_eq!(Lang::Fr.money(1234, "KWD"), "1,234\u{a0}KWD");
        assert_eq!(Lang::En.money(1234, "KWD"), "KWD1.234");
    }

    #[test]
    fn accept_language_picks_ours() {
        assert_eq!(Lang::negotiate(Some("en-GB,en;q=0.9,fr;q=0.8")), Lang::En);
        assert_eq!(Lang::negotiate(Some("de-DE,fr;q=0.5")), Lang::Fr);
        assert_eq!(Lang::negotiate(None), Lang::Fr);
    }
}
