-- Hold: an agent who puts their caller on hold (the phone's hold key, the API) is in the state
-- on_hold until they take the caller back, so reports count hold apart from talk.
ALTER TABLE agent_states DROP CONSTRAINT agent_states_state_check;
ALTER TABLE agent_states ADD CONSTRAINT agent_states_state_check
    CHECK (state IN ('logged_out', 'available', 'reserved', 'on_call', 'on_hold', 'wrap_up', 'paused'));
