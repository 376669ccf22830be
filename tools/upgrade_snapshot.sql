-- What tools/test.sh --upgrade compares before and after the upgrade: for each kind of record, how many rows and
-- an md5 of their key columns (those both releases have; new columns are not compared). Records that the module's
-- data files define (demo) are counted, but their fields are the files' to rewrite on upgrade: not compared.
-- A flow's responsible is compared as the upgrade must set it: its own, else its creator (a person), else the admin.
WITH owned AS (
    SELECT model, res_id FROM ir_model_data WHERE module = 'mautomate_marketing' AND NOT noupdate
), snapshot (kind, row_count, digest) AS (
SELECT 'events', count(*), md5(string_agg(ROW(id, occurred_at, event_type, source, name, url, value, payload, visitor_id,
       anonymous_id, partner_id, lead_id, res_model, res_id, campaign_id, source_id, medium_id, api_key_id)::text, ';' ORDER BY id)
       FILTER (WHERE id NOT IN (SELECT res_id FROM owned WHERE model = 'mautomate.event')))
  FROM mautomate_event
UNION ALL
SELECT 'score_ledger', count(*), md5(string_agg(ROW(id, rule_id, event_id, partner_id, lead_id, points, date)::text, ';' ORDER BY id))
  FROM mautomate_score_entry
UNION ALL
SELECT 'score_rules', count(*), md5(string_agg(ROW(id, name, active, rule_type, points, event_type, url_pattern, name_pattern,
       domain, max_per_contact, max_per_period, period_days)::text, ';' ORDER BY id)
       FILTER (WHERE id NOT IN (SELECT res_id FROM owned WHERE model = 'mautomate.score.rule')))
  FROM mautomate_score_rule
UNION ALL
SELECT 'flows', count(*), md5(string_agg(ROW(id, name, active, state, target, domain, goal_domain, reentry, reentry_days)::text,
       ';' ORDER BY id) FILTER (WHERE id NOT IN (SELECT res_id FROM owned WHERE model = 'mautomate.flow')))
  FROM mautomate_flow
UNION ALL
SELECT 'flow_responsibles', count(*), md5(string_agg(ROW(flow.id, COALESCE(flow.user_id,
       (SELECT creator.id FROM res_users creator WHERE creator.id = flow.create_uid AND creator.id <> 1 AND creator.active
           AND NOT creator.share),
       (SELECT res_id FROM ir_model_data WHERE module = 'base' AND name = 'user_admin' AND model = 'res.users')))::text,
       ';' ORDER BY flow.id))
  FROM mautomate_flow flow
UNION ALL
SELECT 'flow_participants', count(*), md5(string_agg(ROW(id, flow_id, partner_id, lead_id, target, state, exclusive)::text,
       ';' ORDER BY id))
  FROM mautomate_flow_participant
UNION ALL
SELECT 'flow_traces', count(*), md5(string_agg(ROW(id, participant_id, step_id, state, scheduled_at, started_at, done_at, branch,
       outcome, skip_reason, mail_mail_id)::text, ';' ORDER BY id))
  FROM mautomate_flow_trace
UNION ALL
SELECT 'forms', count(*), md5(string_agg(ROW(id, name, slug, active, questions_per_page, min_fill_seconds, create_lead,
       consent_text, double_optin)::text, ';' ORDER BY id)
       FILTER (WHERE id NOT IN (SELECT res_id FROM owned WHERE model = 'mautomate.form')))
  FROM mautomate_form
UNION ALL
SELECT 'consents', count(*), md5(string_agg(ROW(id, partner_id, form_id, email, text, ip_address, state, confirm_date,
       confirm_ip_address, create_date)::text, ';' ORDER BY id))
  FROM mautomate_consent
UNION ALL
SELECT 'api_keys', count(*), md5(string_agg(ROW(id, name, active, key_prefix, key_hash)::text, ';' ORDER BY id)
       FILTER (WHERE id NOT IN (SELECT res_id FROM owned WHERE model = 'mautomate.api.key')))
  FROM mautomate_api_key
)
SELECT kind, row_count, COALESCE(digest, '-') FROM snapshot;
