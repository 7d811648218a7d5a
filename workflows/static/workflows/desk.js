// The reviewer's desk: the first click on a blurred keyframe reveals it; the next opens it full size.
"use strict";
document.addEventListener("click", (event) => {
    const revealAll = event.target.closest("[data-reveal-all]");
    if (revealAll) {
        const scope = document.getElementById(revealAll.dataset.revealAll) || document;
        scope.querySelectorAll(".kf-blur").forEach((frame) => frame.classList.add("kf-revealed"));
        return;
    }
    const frame = event.target.closest(".kf-blur");
    if (!frame || document.body.classList.contains("reveal-keyframes") || frame.classList.contains("kf-revealed")) {
        return;
    }
    event.preventDefault();
    frame.classList.add("kf-revealed");
});
