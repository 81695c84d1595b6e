//! The back office's strings, in French and English. Each string is written once with both
//! languages side by side, so a missing translation cannot compile.

use crate::i18n::Lang;

macro_rules! strings {
    ($($name:ident: $fr:expr, $en:expr;)*) => {
        /// The back office's strings of one language.
        pub struct A {
            $(pub $name: &'static str,)*
        }
        pub static FR: A = A { $($name: $fr,)* };
        pub static EN: A = A { $($name: $en,)* };
    };
}

strings! {
    // navigation and page titles
    dashboard: "Tableau de bord", "Dashboard";
    orders: "Commandes", "Orders";
    order: "Commande", "Order";
    stock: "Stock", "Stock";
    products: "Produits", "Products";
    product: "Produit", "Product";
    staff: "Équipe", "Staff";
    api_keys: "Clés d'API", "API keys";
    movements: "Mouvements", "Movements";

    // dashboard
    scope_all: "Toutes les boutiques et l'entrepôt.", "All stores and the warehouse.";
    scope_store: "Boutique :", "Store:";
    today_orders: "Commandes du jour", "Orders today";
    today_revenue: "Chiffre d'affaires du jour", "Revenue today";
    low_alerts: "Alertes de stock bas", "Low-stock alerts";
    no_low: "Aucun article sous son seuil.", "No item is under its threshold.";
    see_all_low: "Voir toutes les alertes", "See all alerts";
    revenue_14: "Chiffre d'affaires des 14 derniers jours", "Revenue over the last 14 days";
    chart_total: "Total sur 14 jours :", "Total over 14 days:";
    chart_data: "Voir les chiffres", "Show the figures";
    day: "Jour", "Day";
    revenue: "Chiffre d'affaires", "Revenue";
    latest_orders: "Dernières commandes", "Latest orders";
    all_orders: "Toutes les commandes", "All orders";
    no_orders: "Aucune commande.", "No orders.";

    // common words
    colon: "\u{a0}:", ":";
    all: "Toutes", "All";
    none: "— Aucun —", "— None —";
    filter: "Filtrer", "Filter";
    filters: "Filtres", "Filters";
    search: "Rechercher", "Search";
    save: "Enregistrer", "Save";
    create: "Créer", "Create";
    cancel: "Annuler", "Cancel";
    add: "Ajouter", "Add";
    actions: "Actions", "Actions";
    status: "État", "Status";
    date: "Date", "Date";
    name: "Nom", "Name";
    email: "E-mail", "E-mail";
    location: "Lieu", "Location";
    store: "Boutique", "Store";
    reason: "Motif", "Reason";
    note: "Note", "Note";
    by: "Par", "By";
    from: "De", "From";
    to: "À", "To";
    view: "Voir", "View";
    next_page: "Page suivante", "Next page";
    older: "Plus anciennes", "Older";
    active: "Actif", "Active";
    disabled: "Désactivé", "Disabled";
    created: "Créée le", "Created";

    // products
    new_product: "Nouveau produit", "New product";
    no_products: "Aucun produit.", "No products.";
    brand: "Marque", "Brand";
    category: "Catégorie", "Category";
    price: "Prix", "Price";
    shop_page: "Page boutique", "Shop page";
    description: "Description", "Description";
    variants: "Déclinaisons", "Variants";
    variant: "Déclinaison", "Variant";
    variants_hint: "Une ligne par taille ou coloris ; les lignes vides sont ignorées. SKU en majuscules, chiffres, - _ .", "One row per size or colour; empty rows are ignored. SKU in capitals, digits, - _ .";
    size: "Taille", "Size";
    colour: "Coloris", "Colour";
    price_eur: "Prix TTC (€)", "Price incl. VAT (€)";
    vat_pct: "TVA (%)", "VAT (%)";
    pictures: "Photos", "Pictures";
    no_pictures: "Aucune photo.", "No pictures.";
    image_url: "Adresse de la photo", "Picture address";
    image_url_hint: "Une adresse https:// ou un chemin sur ce site (facultatif).", "An https:// address or a path on this site (optional).";
    add_variant: "Ajouter une déclinaison", "Add a variant";
    archive: "Archiver", "Archive";
    archive_hint: "Le produit est retiré de la vente ; il reste dans l'historique des commandes. Irréversible.", "The product is withdrawn from sale and kept in order history. This cannot be undone.";
    back_to_products: "Tous les produits", "All products";
    ps_draft: "Brouillon", "Draft";
    ps_published: "Publié", "Published";
    ps_archived: "Archivé", "Archived";
    done_created: "Produit créé.", "Product created.";
    done_saved: "Modifications enregistrées.", "Changes saved.";
    done_variant_saved: "Déclinaison enregistrée.", "Variant saved.";
    done_variant_added: "Déclinaison ajoutée.", "Variant added.";
    done_archived: "Produit archivé.", "Product archived.";

    // stock
    pick_location: "Choisissez un lieu :", "Choose a location:";
    all_locations: "Tous les lieux", "All locations";
    lk_store: "boutique", "store";
    lk_warehouse: "entrepôt", "warehouse";
    lk_head_office: "siège", "head office";
    low_only: "Stock bas seulement", "Low stock only";
    on_hand: "En stock", "On hand";
    held: "Réservé", "Held";
    available: "Disponible", "Available";
    threshold: "Seuil", "Threshold";
    alert: "Alerte", "Alert";
    low: "Bas", "Low";
    no_levels: "Aucun article.", "No items.";
    adjust: "Ajuster le stock", "Adjust stock";
    delta: "Variation", "Change";
    delta_hint: "Nombre entier signé : +5 pour ajouter, -2 pour retirer.", "A signed whole number: +5 to add, -2 to remove.";
    record: "Enregistrer l'ajustement", "Record the adjustment";
    done_adjusted: "Stock ajusté :", "Stock adjusted:";
    back_to_stock: "Retour au stock", "Back to stock";
    no_movements: "Aucun mouvement.", "No movements.";
    kind: "Type", "Kind";
    reference: "Référence", "Reference";
    mk_receipt: "Réception", "Receipt";
    mk_sale: "Vente", "Sale";
    mk_return: "Retour", "Return";
    mk_hold: "Réservation", "Hold";
    mk_release: "Libération", "Release";
    mk_adjustment: "Ajustement", "Adjustment";
    mk_transfer_out: "Transfert sortant", "Transfer out";
    mk_transfer_in: "Transfert entrant", "Transfer in";

    // orders
    number: "Numéro", "Number";
    customer: "Client", "Customer";
    fulfilment: "Livraison", "Fulfilment";
    delivery: "Livraison à domicile", "Home delivery";
    click_collect: "Retrait en boutique", "Click & collect";
    address: "Adresse", "Address";
    lines: "Articles", "Items";
    totals: "Totaux", "Totals";
    quantity: "Quantité", "Quantity";
    unit_price: "Prix unitaire", "Unit price";
    subtotal: "Sous-total", "Subtotal";
    shipping: "Frais de port", "Shipping";
    total: "Total", "Total";
    refunded: "Remboursé", "Refunded";
    history: "Historique", "History";
    saga: "Étapes du paiement (saga)", "Checkout steps (saga)";
    saga_state: "État de la saga", "Saga state";
    attempts: "Tentatives", "Attempts";
    no_saga: "Aucune saga pour cette commande.", "No saga for this order.";
    mark_shipped: "Marquer comme expédiée", "Mark as shipped";
    ready_for_collection: "Prête à retirer", "Ready for collection";
    mark_delivered: "Marquer comme livrée", "Mark as delivered";
    mark_collected: "Marquer comme retirée", "Mark as collected";
    cancel_order: "Annuler la commande", "Cancel the order";
    cancel_hint: "Rembourse la totalité et remet le stock en place.", "Refunds in full and puts the stock back.";
    partial_refund: "Remboursement partiel", "Partial refund";
    left_to_refund: "Reste remboursable", "Left to refund";
    amount: "Montant", "Amount";
    refund: "Rembourser", "Refund";
    back_to_orders: "Toutes les commandes", "All orders";
    done_fulfilled: "Commande mise à jour : expédiée ou prête à retirer.", "Order updated: shipped or ready for collection.";
    done_completed: "Commande terminée.", "Order completed.";
    done_cancelled: "Commande annulée et remboursée.", "Order cancelled and refunded.";
    done_refunded: "Remboursement effectué.", "Refund made.";
    st_pending: "En attente", "Pending";
    st_awaiting_payment: "Paiement en attente", "Awaiting payment";
    st_paid: "Payée", "Paid";
    st_fulfilled: "Expédiée / prête", "Fulfilled";
    st_completed: "Terminée", "Completed";
    st_cancelled: "Annulée", "Cancelled";
    st_partially_refunded: "Remboursée en partie", "Partially refunded";
    st_refunded: "Remboursée", "Refunded";
    st_unknown: "Autre", "Other";
    out_done: "fait", "done";
    out_failed: "échec", "failed";
    out_retry: "nouvel essai", "retry";
    out_compensated: "compensé", "compensated";

    // staff
    role: "Rôle", "Role";
    role_clerk: "Vendeur", "Clerk";
    role_store_manager: "Gérant de boutique", "Store manager";
    role_warehouse: "Entrepôt", "Warehouse";
    role_head_office: "Siège", "Head office";
    role_organiser: "Organisateur", "Organiser";
    role_customer: "Client", "Customer";
    role_integrator: "Intégrateur", "Integrator";
    no_users: "Aucun compte.", "No accounts.";
    staff_only: "L'équipe seulement", "Staff only";
    all_accounts: "Tous les comptes (clients compris)", "All accounts (customers included)";
    disable: "Désactiver", "Disable";
    enable: "Réactiver", "Enable";
    new_staff: "Nouveau membre de l'équipe", "New staff member";
    organiser: "Organisateur (rôle organisateur)", "Organiser (organiser role)";
    store_hint: "Obligatoire pour vendeur, gérant et entrepôt.", "Required for clerks, store managers and warehouse staff.";
    initial_password: "Mot de passe initial", "Initial password";
    password_hint: "Laissez vide pour en générer un, affiché une seule fois.", "Leave empty to have one generated and shown once.";
    staff_created: "Compte créé", "Account created";
    password_once: "Mot de passe initial, affiché cette seule fois : transmettez-le de façon sûre.", "Initial password, shown this once only: hand it over safely.";
    password_chosen: "Le mot de passe est celui que vous avez saisi.", "The password is the one you typed.";
    back_to_staff: "Retour à l'équipe", "Back to staff";
    done_user_updated: "Compte mis à jour.", "Account updated.";

    // API keys
    no_keys: "Aucune clé.", "No keys.";
    prefix: "Préfixe", "Prefix";
    scopes: "Droits", "Scopes";
    expires: "Expire le", "Expires";
    last_used: "Dernier usage", "Last used";
    revoked: "Révoquée", "Revoked";
    revoke: "Révoquer", "Revoke";
    new_key: "Nouvelle clé", "New key";
    expiry_days: "Durée de validité (jours)", "Lifetime (days)";
    expiry_hint: "De 1 à 3650 ; vide : sans expiration.", "1 to 3650; empty: never expires.";
    key_created: "Clé créée", "Key created";
    key_once: "Voici la clé, affichée cette seule fois : copiez-la maintenant, elle n'est conservée que sous forme d'empreinte.", "Here is the key, shown this once only: copy it now, only its digest is kept.";
    back_to_keys: "Retour aux clés", "Back to keys";
    done_revoked: "Clé révoquée.", "Key revoked.";

    // errors
    err_form: "Vérifiez les champs signalés.", "Check the fields marked.";
    err_required: "Obligatoire.", "Required.";
    err_invalid: "Valeur invalide", "Invalid value";
    err_too_long: "Trop long.", "Too long.";
    err_taken: "Déjà utilisé.", "Already used.";
    err_price: "Un prix en euros, par exemple 59,90.", "A price in euros, e.g. 59.90.";
    err_vat: "Un taux entre 0 et 100, par exemple 20 ou 5,5.", "A rate between 0 and 100, e.g. 20 or 5.5.";
    err_one_variant: "Au moins une déclinaison (SKU et prix).", "At least one variant (SKU and price).";
    err_sku_taken: "Ce SKU existe déjà.", "This SKU already exists.";
    err_slug_taken: "Un produit porte déjà ce nom (adresse déjà prise).", "A product already has this name (address taken).";
    err_archived: "Un produit archivé ne peut plus être modifié.", "An archived product cannot be changed.";
    err_changed: "Quelqu'un d'autre a modifié ce produit entre-temps : vérifiez puis enregistrez à nouveau.", "Someone else changed this product in the meantime: check, then save again.";
    err_delta: "Un nombre entier non nul, par exemple +5 ou -2.", "A whole number other than zero, e.g. +5 or -2.";
    err_below_zero: "Refusé : le stock deviendrait négatif.", "Refused: the stock would go below zero.";
    err_amount: "Un montant en euros supérieur à zéro, par exemple 10,50.", "An amount in euros above zero, e.g. 10.50.";
    err_over_refund: "Refusé : le montant dépasse ce qui reste à rembourser.", "Refused: the amount is more than what is left to refund.";
    err_wrong_state: "Refusé : la commande n'est plus dans un état qui le permet (elle a peut-être changé entre-temps).", "Refused: the order is no longer in a state that allows this (it may have changed in the meantime).";
    err_payment: "Le prestataire de paiement a refusé l'opération.", "The payment provider refused the operation.";
    err_conflict: "Refusé", "Refused";
    err_refused: "Refusé", "Refused";
    err_busy: "Service occupé : réessayez dans un instant.", "Busy: try again in a moment.";
    err_generic: "Une erreur est survenue. Réessayez dans un instant.", "Something went wrong. Try again in a moment.";
    err_store_needed: "Ce rôle demande une boutique.", "This role needs a store.";
    err_email_taken: "Un compte existe déjà avec cet e-mail.", "An account already uses this e-mail.";
    err_not_your_store: "Vous ne pouvez agir que pour votre boutique.", "You can only act for your own store.";
    err_not_allowed: "Vous n'avez pas le droit de faire cela.", "You are not allowed to do this.";
    err_one_scope: "Cochez au moins un droit.", "Tick at least one scope.";
    err_expiry: "Un nombre de jours entre 1 et 3650.", "A number of days between 1 and 3650.";
}

/// The strings of `l`.
pub fn a(l: Lang) -> &'static A {
    match l {
        Lang::Fr => &FR,
        Lang::En => &EN,
    }
}

impl A {
    /// The words of an order status.
    pub fn order_status(&self, s: &str) -> &'static str {
        match s {
            "pending" => self.st_pending,
            "awaiting_payment" => self.st_awaiting_payment,
            "paid" => self.st_paid,
            "fulfilled" => self.st_fulfilled,
            "completed" => self.st_completed,
            "cancelled" => self.st_cancelled,
            "partially_refunded" => self.st_partially_refunded,
            "refunded" => self.st_refunded,
            _ => self.st_unknown,
        }
    }

    /// The words of a saga step's outcome.
    pub fn step_outcome(&self, s: &str) -> &'static str {
        match s {
            "done" => self.out_done,
            "failed" => self.out_failed,
            "retry" => self.out_retry,
            "compensated" => self.out_compensated,
            _ => self.st_unknown,
        }
    }

    /// The words of a product's publication state.
    pub fn product_status(&self, s: &str) -> &'static str {
        match s {
            "draft" => self.ps_draft,
            "published" => self.ps_published,
            "archived" => self.ps_archived,
            _ => self.st_unknown,
        }
    }

    /// The words of a role.
    pub fn role(&self, r: &str) -> &'static str {
        match r {
            "clerk" => self.role_clerk,
            "store_manager" => self.role_store_manager,
            "warehouse" => self.role_warehouse,
            "head_office" => self.role_head_office,
            "organiser" => self.role_organiser,
            "customer" => self.role_customer,
            "integrator" => self.role_integrator,
            _ => self.st_unknown,
        }
    }

    /// The words of a stock movement's kind.
    pub fn movement_kind(&self, k: &str) -> &'static str {
        match k {
            "receipt" => self.mk_receipt,
            "sale" => self.mk_sale,
            "return" => self.mk_return,
            "hold" => self.mk_hold,
            "release" => self.mk_release,
            "adjustment" => self.mk_adjustment,
            "transfer_out" => self.mk_transfer_out,
            "transfer_in" => self.mk_transfer_in,
            _ => self.st_unknown,
        }
    }

    /// The words of a location's kind.
    pub fn location_kind(&self, k: &str) -> &'static str {
        match k {
            "store" => self.lk_store,
            "warehouse" => self.lk_warehouse,
            "head_office" => self.lk_head_office,
            _ => self.st_unknown,
        }
    }
}
