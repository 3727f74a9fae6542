"""Words for every alert: a calm message for the patient, a concise summary for the clinician."""
