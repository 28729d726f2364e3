document.getElementById("app").textContent = "Classroom";
