"""Words on the survey page, in Dutch (B1) and English. Keys are the same in both languages."""

from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "nl": {
        "title": "Hoe hebben wij u geholpen?",
        "intro": "U had kort geleden contact met de gemeente {municipality}. "
        "Wij willen graag weten hoe het ging. Het kost maar een minuut.",
        "score_legend": "Welk cijfer geeft u ons?",
        "score_hint": "1 is heel slecht, 10 is heel goed.",
        "comment_label": "Wat kunnen we beter doen? (niet verplicht)",
        "comment_hint": "Schrijf geen persoonlijke gegevens op, zoals uw BSN. "
        "U kunt maximaal 2000 tekens gebruiken.",
        "contact_label": "U mag contact met mij opnemen over mijn antwoord.",
        "submit": "Versturen",
        "confirm_score": "U koos een {score}. Klopt dat? Druk dan op ‘Versturen’. "
        "U mag ook eerst nog iets schrijven.",
        "switch": "English",
        "switch_lang": "en",
        "thanks_title": "Bedankt voor uw antwoord",
        "thanks_body": "Wij hebben uw cijfer ontvangen: een {score}. "
        "Met uw antwoord maken wij onze dienstverlening beter.",
        "more_title": "Wilt u nog iets toevoegen?",
        "more_submit": "Toevoegen",
        "more_thanks": "Bedankt, wij hebben uw toevoeging ontvangen.",
        "answered_title": "U heeft deze vragenlijst al ingevuld",
        "answered_body": "Wij hebben uw antwoord al ontvangen. U hoeft niets meer te doen.",
        "expired_title": "Deze vragenlijst is verlopen",
        "expired_body": "U kunt deze vragenlijst niet meer invullen. "
        "Heeft u een vraag of klacht? Neem dan contact op met de gemeente {municipality}.",
        "optout_button": "Ik wil geen vragenlijsten meer ontvangen",
        "optout_title": "U krijgt geen vragenlijsten meer",
        "optout_body": "Wij sturen u geen vragenlijsten meer. Uw gegevens voor deze "
        "vragenlijst zijn gewist.",
        "error_summary": "Er ging iets mis. Verbeter dit en verstuur het opnieuw:",
        "error_score": "Kies een cijfer van 1 tot 10.",
        "error_comment": "Uw tekst is te lang. Gebruik maximaal 2000 tekens.",
        "error_form": "De pagina is verlopen. Open de link uit uw bericht opnieuw.",
        "footer": "Gemeente {municipality}",
    },
    "en": {
        "title": "How did we do?",
        "intro": "You were recently in touch with the municipality of {municipality}. "
        "We would like to know how it went. It takes only a minute.",
        "score_legend": "What score do you give us?",
        "score_hint": "1 is very poor, 10 is very good.",
        "comment_label": "What could we do better? (optional)",
        "comment_hint": "Please do not write personal details such as your BSN. "
        "You can use up to 2000 characters.",
        "contact_label": "You may contact me about my answer.",
        "submit": "Send",
        "confirm_score": "You chose {score}. Is that right? Then press ‘Send’. "
        "You may also write something first.",
        "switch": "Nederlands",
        "switch_lang": "nl",
        "thanks_title": "Thank you for your answer",
        "thanks_body": "We received your score: {score}. Your answer helps us improve our service.",
        "more_title": "Anything you would like to add?",
        "more_submit": "Add",
        "more_thanks": "Thank you, we received what you added.",
        "answered_title": "You already answered this survey",
        "answered_body": "We already received your answer. There is nothing more to do.",
        "expired_title": "This survey has expired",
        "expired_body": "This survey can no longer be answered. Do you have a question or a "
        "complaint? Please contact the municipality of {municipality}.",
        "optout_button": "I do not want to receive surveys any more",
        "optout_title": "You will not receive surveys any more",
        "optout_body": "We will not send you surveys any more. Your details for this survey "
        "have been erased.",
        "error_summary": "Something went wrong. Please correct this and send again:",
        "error_score": "Choose a score from 1 to 10.",
        "error_comment": "Your text is too long. Please use at most 2000 characters.",
        "error_form": "This page has expired. Please open the link from your message again.",
        "footer": "Municipality of {municipality}",
    },
}
