-- The identity service replaces the back-office tokens: catalogue writes need a principal with
-- the `catalog:write` permission (head office, or an API key with that scope).
DROP TABLE back_office_tokens;
