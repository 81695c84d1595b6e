//! Staff accounts: created by head office (any staff role) or a store manager (their clerks),
//! listed, read and changed only by those who may see them.

use super::{Error, Identity, Result, generate_password};
use crate::domain::{check_code, check_email, check_name, email_key, invalid};
use crate::http::wire::{NewStaff, StaffCreated, User, UserPage, UserPatch, user_view};
use crate::password;
use crate::store::{self, UserRow};
use platform::authz::{Principal, PrincipalKind, Role, perm};
use uuid::Uuid;

impl Identity {
    /// Head office creates any staff account; a store manager creates clerks of their store.
    pub async fn create_staff(&self, p: &Principal, s: &NewStaff) -> Result<StaffCreated> {
        let mut errors = Vec::new();
        check_email("email", &s.email, &mut errors);
        check_name("name", &s.name, &mut errors);
        if !s.role.is_staff() {
            errors.push(invalid(
                "role",
                "not_staff",
                "customers sign up themselves; integrators are API keys",
            ));
        }
        let mut store_id = s.store.clone();
        if !p.is_head_office() {
            // a store manager: clerks of their own store only
            if s.role != Role::Clerk {
                return Err(Error::Forbidden(perm::STAFF_MANAGE));
            }
            match (&store_id, &p.store) {
                (None, own) => store_id = own.clone(),
                (Some(x), Some(own)) if x == own => {}
                _ => return Err(Error::NotFound("store")),
            }
        }
        if s.role.needs_store() {
            match &store_id {
                Some(code) => check_code("store", code, &mut errors),
                None => errors.push(invalid("store", "required", "this role needs a store")),
            }
        } else if store_id.is_some() && s.store.is_some() {
            errors.push(invalid("store", "not_allowed", "this role has no store"));
        }
        let organiser = if s.role.needs_organiser() {
            match &s.organiser {
                Some(o) => {
                    check_code("organiser", o, &mut errors);
                    Some(o.clone())
                }
                None => {
                    errors.push(invalid(
                        "organiser",
                        "required",
                        "this role needs an organiser",
                    ));
                    None
                }
            }
        } else {
            if s.organiser.is_some() {
                errors.push(invalid(
                    "organiser",
                    "not_allowed",
                    "this role has no organiser",
                ));
            }
            None
        };
        let (password, generated) = match &s.password {
            Some(pw) => {
                if let Err(e) = password::check_policy("password", pw) {
                    errors.push(e);
                }
                (pw.clone(), false)
            }
            None => (generate_password(), true),
        };
        if !errors.is_empty() {
            return Err(Error::Invalid(errors));
        }
        let hash = self.passwords.hash(&password).await?;
        let now = self.now_ms();
        let row = UserRow {
            id: Uuid::now_v7(),
            email: s.email.trim().to_string(),
            email_key: email_key(&s.email),
            name: s.name.trim().to_string(),
            password_hash: Some(hash),
            role: s.role.as_str().into(),
            store_id: if s.role.needs_store() { store_id } else { None },
            organiser_id: organiser,
            status: "active".into(),
            created_at: now,
            updated_at: now,
            password_changed_at: Some(now),
        };
        self.insert_user(&row).await?;
        Ok(StaffCreated {
            user: user_view(&row),
            initial_password: generated.then_some(password),
        })
    }

    /// Users visible to `p`: everyone for head office, their store's for a store manager.
    pub async fn list_users(
        &self,
        p: &Principal,
        role: Option<&str>,
        store: Option<&str>,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<UserPage> {
        let mut errors = Vec::new();
        if let Some(r) = role
            && Role::parse(r).is_none()
        {
            errors.push(invalid("role", "unknown", "not a role"));
        }
        let after = match cursor {
            Some(c) => match Uuid::parse_str(c) {
                Ok(u) => Some(u),
                Err(_) => {
                    errors.push(invalid("cursor", "invalid_format", "not a cursor"));
                    None
                }
            },
            None => None,
        };
        let limit = i64::from(limit.unwrap_or(50));
        if !(1..=200).contains(&limit) {
            errors.push(invalid("limit", "out_of_range", "between 1 and 200"));
        }
        if !errors.is_empty() {
            return Err(Error::InvalidParameters(errors));
        }
        let store = if p.is_head_office() {
            store.map(str::to_string)
        } else {
            match (&p.store, store) {
                (Some(own), None) => Some(own.clone()),
                (Some(own), Some(s)) if s == own => Some(own.clone()),
                // another store's staff, or a manager without a store: nothing to see
                _ => {
                    return Ok(UserPage {
                        items: vec![],
                        next_cursor: None,
                    });
                }
            }
        };
        let rows = store::list_users(&self.db, store.as_deref(), role, after, limit + 1).await?;
        let more = rows.len() as i64 > limit;
        let items: Vec<User> = rows.iter().take(limit as usize).map(user_view).collect();
        let next_cursor = if more {
            items.last().map(|u| u.id.to_string())
        } else {
            None
        };
        Ok(UserPage { items, next_cursor })
    }

    /// One user, if `p` may see them: themselves, head office, or their store's manager.
    /// Anything else is "not found", so that ids are not confirmed.
    pub async fn get_user(&self, p: &Principal, id: Uuid) -> Result<UserRow> {
        let mut conn = self.db.acquire().await?;
        let u = store::user_by_id(conn.conn(), id)
            .await?
            .ok_or_else(|| Error::NotFound("user"))?;
        let visible = p.kind == PrincipalKind::User && p.subject == u.id.to_string()
            || p.is_head_office()
            || (p.has(perm::STAFF_READ)
                && u.store_id
                    .as_deref()
                    .is_some_and(|s| p.may_act_for_store(s)));
        if !visible {
            return Err(Error::NotFound("user"));
        }
        Ok(u)
    }

    pub async fn update_user(&self, p: &Principal, id: Uuid, patch: &UserPatch) -> Result<User> {
        let mut user = self.get_user(p, id).await?;
        let is_self = p.subject == user.id.to_string();
        if !p.is_head_office() {
            // a store manager: their store's clerks, name and status only
            let mine = user.role == Role::Clerk.as_str()
                && user
                    .store_id
                    .as_deref()
                    .is_some_and(|s| p.may_act_for_store(s));
            if !mine || is_self {
                return Err(Error::NotFound("user"));
            }
            if patch.role.is_some() || patch.store.is_some() || patch.organiser.is_some() {
                return Err(Error::Forbidden(perm::STAFF_MANAGE));
            }
        }
        let mut errors = Vec::new();
        let before = (
            user.role.clone(),
            user.store_id.clone(),
            user.organiser_id.clone(),
            user.status.clone(),
        );
        if let Some(n) = &patch.name {
            check_name("name", n, &mut errors);
            user.name = n.trim().to_string();
        }
        if let Some(s) = &patch.status {
            if s != "active" && s != "disabled" {
                errors.push(invalid("status", "unknown", "`active` or `disabled`"));
            } else if is_self && s == "disabled" {
                errors.push(invalid("status", "self", "you cannot disable yourself"));
            }
            user.status = s.clone();
        }
        if let Some(r) = patch.role {
            if is_self {
                errors.push(invalid("role", "self", "you cannot change your own role"));
            }
            if !r.is_staff() && user.role != r.as_str() {
                errors.push(invalid("role", "not_staff", "staff roles only"));
            }
            user.role = r.as_str().into();
        }
        if let Some(s) = &patch.store {
            check_code("store", s, &mut errors);
            user.store_id = Some(s.clone());
        }
        if let Some(o) = &patch.organiser {
            check_code("organiser", o, &mut errors);
            user.organiser_id = Some(o.clone());
        }
        let role = Role::parse(&user.role).unwrap_or(Role::Customer);
        if role.needs_store() && user.store_id.is_none() {
            errors.push(invalid("store", "required", "this role needs a store"));
        }
        if !role.needs_store() {
            user.store_id = None;
        }
        if role.needs_organiser() && user.organiser_id.is_none() {
            errors.push(invalid(
                "organiser",
                "required",
                "this role needs an organiser",
            ));
        }
        if !role.needs_organiser() {
            user.organiser_id = None;
        }
        if !errors.is_empty() {
            return Err(Error::Invalid(errors));
        }
        let now = self.now_ms();
        user.updated_at = now;
        let after = (
            user.role.clone(),
            user.store_id.clone(),
            user.organiser_id.clone(),
            user.status.clone(),
        );
        let mut tx = self.db.begin().await?;
        store::update_user(tx.conn(), &user).await?;
        if before != after {
            // tokens carry role and store: old ones must not outlive the change
            let reason = if user.status == "disabled" {
                "disabled"
            } else {
                "access_changed"
            };
            store::revoke_user_sessions(tx.conn(), user.id, reason, now).await?;
        }
        tx.commit().await?;
        Ok(user_view(&user))
    }
}
