from odoo import api, models
from odoo.exceptions import ValidationError

from .mautomate_flow_engine import BRANCHING_KINDS

# Edits that change where the participants at a step go next.
ROUTING_FIELDS = {'kind', 'flow_id', 'parent_ids', 'child_ids', 'branch'}


class MautomateFlowStep(models.Model):
    """ A flow edited while participants go through it must not strand them. The rule: while participants are
    at a step (scheduled or waiting), the step keeps its kind and its flow, and each of its outcomes that leads
    to a next step keeps leading to one (deleting the step itself is refused in the step's model). """
    _inherit = 'mautomate.flow.step'

    @api.model_create_multi
    def create(self, vals_list):
        steps = super().create(vals_list)
        (steps | steps.parent_ids)._flow_check_running_timeouts()
        return steps

    def write(self, vals):
        if not ROUTING_FIELDS & set(vals):
            return super().write(vals)
        parents_before = self.parent_ids
        pending = (self | self.parent_ids)._flow_pending_steps()
        moved = (pending & self).filtered(lambda step: ('kind' in vals and step.kind != vals['kind'])
                                          or ('flow_id' in vals and step.flow_id.id != vals['flow_id']))
        if moved:
            raise ValidationError(self.env._(
                "Participants are at step %s: it cannot change its kind or flow until they have passed it.", moved[0].name))
        before = {step: step._flow_covered_outcomes() for step in pending}
        result = super().write(vals)
        pending.invalidate_recordset(['child_ids'])
        self._flow_check_outcomes_kept(before, {step: step._flow_covered_outcomes() for step in pending})
        (self | parents_before | self.parent_ids).exists()._flow_check_running_timeouts()
        return result

    def unlink(self):
        pending = (self.parent_ids - self)._flow_pending_steps()
        self._flow_check_outcomes_kept({step: step._flow_covered_outcomes() for step in pending},
                                       {step: step._flow_covered_outcomes(step.child_ids - self) for step in pending})
        for parent in (self.parent_ids - self).filtered(lambda step: step.flow_id.state == 'running'):
            parent._flow_check_timeout_branch(parent.child_ids - self)
        return super().unlink()

    def _flow_check_running_timeouts(self):
        """ The waits for an event of running flows among these steps lead somewhere when the event does not come. """
        for step in self.filtered(lambda step: step.flow_id.state == 'running'):
            step._flow_check_timeout_branch()

    def _flow_check_timeout_branch(self, children=None):
        """ A wait for an event needs a next step on its timeout branch: without one, whoever the event never
        comes for leaves the flow unnoticed. """
        self.ensure_one()
        if self.kind == 'wait' and 'timeout' not in self._flow_covered_outcomes(children):
            raise ValidationError(self.env._(
                "Step %(step)s of flow %(flow)s waits for an event: add a step on its \"timeout\" branch, for the "
                "participants the event never comes for. To add a wait to a running flow, pause the flow first.",
                step=self.name, flow=self.flow_id.name))

    def _flow_pending_steps(self):
        """ The steps of self where participants are scheduled or waiting. """
        if not self.ids:
            return self.browse()
        self.env['mautomate.flow.trace'].flush_model(['step_id', 'state'])
        groups = self.env['mautomate.flow.trace'].sudo()._read_group(
            [('step_id', 'in', self.ids), ('state', 'in', ('scheduled', 'waiting', 'processing'))], ['step_id'])
        return self.browse([step.id for step, in groups])

    def _flow_outcomes(self):
        """ The outcomes a participant can leave this step by. """
        self.ensure_one()
        if self.kind == 'split':
            return tuple(branch for branch, _weight in self._split_weights())
        return {'condition': ('yes', 'no'), 'wait': ('yes', 'timeout')}.get(self.kind, ('always',))

    def _flow_covered_outcomes(self, children=None):
        """ The outcomes of this step that lead to a next step. """
        children = self.child_ids if children is None else children
        branching = self.kind in BRANCHING_KINDS
        return {outcome for outcome in self._flow_outcomes()
                if children.filtered(lambda child, outcome=outcome: not branching or child.branch in (outcome, 'always'))}

    def _flow_check_outcomes_kept(self, before, after):
        labels = dict(self._fields['branch']._description_selection(self.env))
        for step, outcomes in before.items():
            if lost := sorted(outcomes - after[step]):
                raise ValidationError(self.env._(
                    "Participants are at step %(step)s: its \"%(branch)s\" branch must keep a next step, or they would "
                    "leave the flow there. Change it once they have passed the step.", step=step.name, branch=labels[lost[0]]))
